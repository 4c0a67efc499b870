"""Settings read from the environment, with defaults that suit one developer machine.

Every process (service, relay, gateway, CLI) reads the same variables, so a stack is
configured in one place: `AMQP_URL`, `MONGO_URL`, `KEPU_JWT_SECRET` and friends.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("KEPU_VAR_DIR", ROOT / "var"))

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _ints(raw: str) -> tuple[int, ...]:
    return tuple(int(part) for part in raw.split(",") if part.strip())


def _trusted_proxies(env: dict[str, str]) -> str:
    """KEPU_TRUSTED_PROXIES. KEPU_PROXY_HOPS (a count of proxies) is refused, not ignored:
    left set after an upgrade it would silently key every client on the ingress's address."""
    if env.get("KEPU_PROXY_HOPS"):
        raise ValueError("KEPU_PROXY_HOPS was replaced by KEPU_TRUSTED_PROXIES, the networks "
                         "of the proxies in front of the gateway (deploy/README.md)")
    return env.get("KEPU_TRUSTED_PROXIES") or "127.0.0.0/8,::1/128"


def _jwt_secret() -> str:
    """The signing secret: from the environment, else one generated once per checkout."""
    secret = os.environ.get("KEPU_JWT_SECRET")
    if secret:
        return secret
    path = VAR / "jwt.secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


@dataclass(frozen=True)
class Settings:
    amqp_url: str = DEFAULT_AMQP_URL
    mongo_url: str = "mongodb://127.0.0.1:27017"
    db_prefix: str = "kepu"
    jwt_secret: str = field(default="", repr=False)
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000, 120_000)
    rpc_timeout_s: float = 30.0
    max_workers: int | None = None  # unset: each service's own number, else 10
    relay_workers: int = 4
    relay_idle_poll_s: float | None = None  # the longest wait between polls of a quiet
    # outbox; unset: the relay's own (1 s)
    log_level: str = "INFO"
    quorum_queues: bool = False
    write_concern_majority: bool = False
    rate_limits: str = ""  # the gateway's per-client limits: "group=rate/s:burst,…" (throttle)
    # networks of the proxies in front of the gateway (the ingress, the console): only their
    # X-Forwarded-For is believed (services/gateway/throttle.py client_address)
    trusted_proxies: str = "127.0.0.0/8,::1/128"

    @property
    def max_attempts(self) -> int:
        """A handler runs once, then once more after each retry delay."""
        return len(self.retry_delays_ms) + 1

    def database(self, service: str) -> str:
        return f"{self.db_prefix}_{service}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            amqp_url=env.get("AMQP_URL", DEFAULT_AMQP_URL),
            mongo_url=env.get("MONGO_URL", "mongodb://127.0.0.1:27017"),
            db_prefix=env.get("KEPU_DB_PREFIX", "kepu"),
            jwt_secret=env.get("KEPU_JWT_SECRET") or _jwt_secret(),
            retry_delays_ms=_ints(env.get("KEPU_RETRY_DELAYS_MS", "1000,5000,30000,120000")),
            rpc_timeout_s=float(env.get("KEPU_RPC_TIMEOUT_S", "30")),
            max_workers=int(env["KEPU_MAX_WORKERS"]) if env.get("KEPU_MAX_WORKERS") else None,
            relay_workers=int(env.get("KEPU_RELAY_WORKERS", "4")),
            relay_idle_poll_s=(float(env["KEPU_RELAY_IDLE_POLL_S"])
                               if env.get("KEPU_RELAY_IDLE_POLL_S") else None),
            log_level=env.get("KEPU_LOG_LEVEL", "INFO"),
            quorum_queues=env.get("KEPU_QUORUM_QUEUES", "0") == "1",
            write_concern_majority=env.get("KEPU_WRITE_CONCERN", "") == "majority",
            rate_limits=env.get("KEPU_RATE_LIMITS", ""),
            trusted_proxies=_trusted_proxies(env),
        )

    def nameko_config(self) -> dict:
        return {
            "AMQP_URI": self.amqp_url,
            "max_workers": self.max_workers,
            "SERVICE_CONTAINER_CLS": "services.kit.container.Container",
            "serializer": "json",
            "HEARTBEAT": 30,
        }
