"""Liveness and readiness.

- `/livez`: the process is up and answering. No RPC, no database: a restart never follows
  from a dependency being down (that would restart every gateway at once).
- `/readyz` (alias `/healthz`, which `make up` and the tests wait on): the database, the
  broker and every service answer, and this process's revocation listener has loaded the
  recent cut-offs (revocations.py). One check fans out to every service, so its result is
  shared for `READY_CACHE_S` by every caller (and the route is rate-limited): polling it
  cannot be turned into a flood of RPC.

The services are those `services.kit.services` lists (a partial stack, `KEPU_SERVICES`,
reports only the ones it runs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from services.kit import services as registry

READY_CACHE_S = 2.0
PING_TIMEOUT_S = 5


def live() -> tuple[int, dict[str, Any]]:
    return 200, {"status": "ok"}


def _service(gateway: Any, name: str) -> str:
    try:
        gateway.rpc.call(name, "ping", timeout=PING_TIMEOUT_S)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return f"down: {exc}"


def check(gateway: Any, services: tuple[str, ...] | None = None) -> tuple[int, dict[str, Any]]:
    """Ask the database, the broker and every service once; 200 only if all answer."""
    services = registry.selected() if services is None else services
    report: dict[str, Any] = {}
    try:
        gateway.mongo.admin.command("ping")
        report["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        report["database"] = f"down: {exc}"
    with ThreadPoolExecutor(max_workers=max(1, len(services)),
                            thread_name_prefix="readyz") as pool:
        answers = list(pool.map(lambda n: _service(gateway, n), services))
    try:
        gateway.rpc.check()
        report["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        report["broker"] = f"down: {exc}"
    report["services"] = dict(zip(services, answers, strict=True))
    listener = getattr(gateway, "listener", None)
    listening = listener is None or listener.connected.is_set()
    if listener is not None:  # cut-offs loaded and revocations heard: tokens checked fully
        report["revocations"] = "ok" if listening else "connecting"
    healthy = (report["database"] == report["broker"] == "ok" and listening
               and all(v == "ok" for v in answers))
    report["status"] = "ok" if healthy else "degraded"
    return (200 if healthy else 503), report


class Readiness:
    """`check`, run at most once per `ttl_s` however many callers ask meanwhile."""

    def __init__(self, gateway: Any, ttl_s: float = READY_CACHE_S,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.gateway = gateway
        self.ttl_s = ttl_s
        self.now = now
        self._lock = threading.Lock()
        self._result: tuple[int, dict[str, Any]] | None = None
        self._at = 0.0

    def __call__(self) -> tuple[int, dict[str, Any]]:
        with self._lock:  # one fan-out at a time; the others wait and share its answer
            if self._result is None or self.now() - self._at >= self.ttl_s:
                self._result = check(self.gateway)
                self._at = self.now()
            return self._result
