"""The notifications service's own settings, from the environment.

`SMTP_HOST`, `SMTP_PORT`, `SMTP_FROM`, `SMS_WEBHOOK_URL`, `WECHAT_WEBHOOK_URL` name the
providers (passed through by `make run` / `make up`); a channel without its setting fails
its messages with a visible error rather than dropping them. `KEPU_PUBLIC_URL` is where
parents open consent and survey links; `KEPU_SURVEY_DAYS` how long a survey takes new
answers. The `KEPU_NOTIFY_*` knobs exist so tests run fast.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from services.notifications.quiet_hours import QuietHours, parse


def _ints(raw: str) -> tuple[int, ...]:
    return tuple(int(part) for part in raw.split(",") if part.strip())


@dataclass(frozen=True)
class NotifySettings:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "科普 Kepu <no-reply@kepu.local>"
    smtp_pool: int = 8
    sms_webhook_url: str | None = None
    wechat_webhook_url: str | None = None
    provider_timeout_s: float = 10.0
    public_url: str = "http://127.0.0.1:8080"
    retry_delays_ms: tuple[int, ...] = (5_000, 30_000)
    tick_s: float = 1.0
    concurrency: int = 16
    lease_s: int = 60
    reminder_hours: int = 24
    survey_days: int = 14  # how long a survey takes new answers after the trip
    quiet: QuietHours = field(default_factory=QuietHours)

    @property
    def max_attempts(self) -> int:
        """One try, then one more after each retry delay."""
        return len(self.retry_delays_ms) + 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> NotifySettings:
        env = os.environ if env is None else env
        public = env.get("KEPU_PUBLIC_URL") or env.get("KEPU_URL") or cls.public_url
        return cls(
            smtp_host=env.get("SMTP_HOST") or None,
            smtp_port=int(env.get("SMTP_PORT") or 25),
            smtp_from=env.get("SMTP_FROM") or cls.smtp_from,
            smtp_pool=int(env.get("KEPU_NOTIFY_SMTP_POOL", "8")),
            sms_webhook_url=env.get("SMS_WEBHOOK_URL") or None,
            wechat_webhook_url=env.get("WECHAT_WEBHOOK_URL") or None,
            provider_timeout_s=float(env.get("KEPU_NOTIFY_PROVIDER_TIMEOUT_S", "10")),
            public_url=public.rstrip("/"),
            retry_delays_ms=_ints(env.get("KEPU_NOTIFY_RETRY_DELAYS_MS", "5000,30000")),
            tick_s=float(env.get("KEPU_NOTIFY_TICK_S", "1")),
            concurrency=int(env.get("KEPU_NOTIFY_CONCURRENCY", "16")),
            reminder_hours=int(env.get("KEPU_NOTIFY_REMINDER_HOURS", "24")),
            survey_days=max(1, int(env.get("KEPU_SURVEY_DAYS", "14"))),
            quiet=parse(env.get("KEPU_QUIET_HOURS", "21:00-07:00")),
        )
