"""The admissions service's own settings, from the environment (deploy/README.md).

`KEPU_ADMISSIONS_*` tune the one-time codes, how long an unconfirmed hold lasts and how
many days after its session a guardian's mobile number is erased; `KEPU_PUBLIC_URL` is
where guardians open their ticket and manage links.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class AdmissionsSettings:
    code_ttl_s: int = 300  # a one-time code lasts five minutes
    code_attempts: int = 5  # wrong codes before the number is locked
    lock_s: int = 1800  # how long a locked number waits
    resend_gap_s: int = 60  # at most one code a minute per number
    resends: int = 5  # codes per number per lock period
    pass_ttl_s: int = 1800  # a verified number may book for half an hour
    hold_s: int = 600  # an unconfirmed hold lasts ten minutes
    erase_days: int = 30  # a guardian's mobile is erased this many days after the session
    reminder_hours: int = 24
    sweep_s: float = 5.0  # how often holds are expired, reminders sent, numbers erased
    public_url: str = "http://127.0.0.1:8080"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AdmissionsSettings:
        env = os.environ if env is None else env
        return cls(
            code_ttl_s=int(env.get("KEPU_ADMISSIONS_CODE_TTL_S", cls.code_ttl_s)),
            code_attempts=int(env.get("KEPU_ADMISSIONS_CODE_ATTEMPTS", cls.code_attempts)),
            lock_s=int(env.get("KEPU_ADMISSIONS_LOCK_S", cls.lock_s)),
            resend_gap_s=int(env.get("KEPU_ADMISSIONS_RESEND_GAP_S", cls.resend_gap_s)),
            resends=int(env.get("KEPU_ADMISSIONS_RESENDS", cls.resends)),
            pass_ttl_s=cls.pass_ttl_s,
            hold_s=int(env.get("KEPU_ADMISSIONS_HOLD_S", cls.hold_s)),
            erase_days=int(env.get("KEPU_ADMISSIONS_ERASE_DAYS", cls.erase_days)),
            reminder_hours=cls.reminder_hours,
            sweep_s=float(env.get("KEPU_ADMISSIONS_SWEEP_S", cls.sweep_s)),
            public_url=(env.get("KEPU_PUBLIC_URL") or env.get("KEPU_URL")
                        or cls.public_url).rstrip("/"),
        )
