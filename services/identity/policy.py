"""Identity's settings: lifetimes, limits, retention and where links point.

Read from the environment like kit.config's Settings (which they belong beside once the
service is wired): `KEPU_CONSOLE_URL`, `KEPU_ACCESS_TTL_S`, `KEPU_AUDIT_RETENTION_DAYS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

ACCESS_MAX = timedelta(minutes=15)


@dataclass(frozen=True)
class Policy:
    console_url: str = "http://127.0.0.1:8080"
    access_ttl: timedelta = ACCESS_MAX
    refresh_ttl: timedelta = timedelta(days=30)
    invitation_ttl: timedelta = timedelta(days=7)
    reset_ttl: timedelta = timedelta(hours=1)
    audit_retention: timedelta = timedelta(days=3 * 365)
    audience: str = "kepu-api"
    issuer: str = "kepu"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Policy:
        env = os.environ if env is None else env
        access = timedelta(seconds=int(env.get("KEPU_ACCESS_TTL_S", "900")))
        if not timedelta(seconds=30) <= access <= ACCESS_MAX:
            raise ValueError("KEPU_ACCESS_TTL_S must be between 30 and 900 seconds")
        days = int(env.get("KEPU_AUDIT_RETENTION_DAYS", str(3 * 365)))
        if days < 1:
            raise ValueError("KEPU_AUDIT_RETENTION_DAYS must be at least 1")
        return cls(console_url=env.get("KEPU_CONSOLE_URL", cls.console_url).rstrip("/"),
                   access_ttl=access, audit_retention=timedelta(days=days))
