"""Quiet hours: no SMS or WeChat message reaches a parent between 21:00 and 07:00.

The window is on the wall clock of Asia/Shanghai (where the parents are), whatever the
server's time zone. Email is not held back: it does not ring a phone at night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
INTRUSIVE = frozenset({"sms", "wechat"})


@dataclass(frozen=True)
class QuietHours:
    starts: time = time(21, 0)
    ends: time = time(7, 0)
    zone: ZoneInfo = SHANGHAI

    def applies_to(self, channel: str) -> bool:
        return channel in INTRUSIVE

    def is_quiet(self, when: datetime) -> bool:
        local = when.astimezone(self.zone).time()
        if self.starts > self.ends:  # the window spans midnight
            return local >= self.starts or local < self.ends
        return self.starts <= local < self.ends

    def resume_at(self, when: datetime) -> datetime:
        """The first moment at or after `when` outside the window (the next 07:00 local)."""
        if not self.is_quiet(when):
            return when
        local = when.astimezone(self.zone)
        resume = local.replace(hour=self.ends.hour, minute=self.ends.minute, second=0,
                               microsecond=0)
        if resume <= local:
            resume += timedelta(days=1)
        return resume

    def hold(self, channel: str, when: datetime) -> datetime | None:
        """When a message on `channel` may go if it must wait, else None (send now)."""
        if not self.applies_to(channel) or not self.is_quiet(when):
            return None
        return self.resume_at(when)


def parse(spec: str) -> QuietHours:
    """`21:00-07:00` → QuietHours; an empty spec turns quiet hours off."""
    if not spec.strip():
        return QuietHours(time(0, 0), time(0, 0))
    start, _, end = spec.partition("-")
    return QuietHours(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
