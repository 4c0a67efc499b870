"""Notices as parents read them: one Jinja2 template per notice kind and language.

Each template has three blocks: `subject` and `email` for email, `short` for SMS and
WeChat. Times are shown on the wall clock of the trip's own time zone (the venue's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.contracts.notifications import ACCOUNT_KINDS, LANGUAGES, NOTICE_KINDS
from services.kit import clock

_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent), undefined=StrictUndefined,
                   autoescape=False, keep_trailing_newline=False, trim_blocks=True,
                   lstrip_blocks=True)

_WEEKDAYS_ZH = "一二三四五六日"
_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                "Sunday")
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")


@dataclass(frozen=True)
class Rendered:
    template: str
    subject: str
    email: str
    short: str

    def text_for(self, channel: str) -> str:
        return self.email if channel == "email" else self.short


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def _day(moment: datetime, language: str) -> str:
    if language == "zh-CN":
        weekday = _WEEKDAYS_ZH[moment.weekday()]
        return f"{moment.year}年{moment.month}月{moment.day}日（星期{weekday}）"
    return (f"{_WEEKDAYS_EN[moment.weekday()]} {moment.day} {_MONTHS_EN[moment.month - 1]} "
            f"{moment.year}")


def local_time(starts_at: str, ends_at: str, timezone: str | None, language: str) -> str:
    """`2026年11月28日（星期六）09:30–11:30（北京时间）` / `Saturday 28 November 2026, …`."""
    tz = zone(timezone)
    start, end = clock.parse(starts_at).astimezone(tz), clock.parse(ends_at).astimezone(tz)
    until = end.strftime("%H:%M")
    if end.date() != start.date():
        until = f"{_day(end, language)} {until}" if language == "zh-CN" \
            else f"{_day(end, language)}, {until}"
    shanghai = tz.key == "Asia/Shanghai"
    if language == "zh-CN":
        label = "北京时间" if shanghai else f"{tz.key} 当地时间"
        return f"{_day(start, language)}{start:%H:%M}–{until}（{label}）"
    label = "Beijing time" if shanghai else f"{tz.key} local time"
    return f"{_day(start, language)}, {start:%H:%M}–{until} ({label})"


def price(price_fen: int, language: str) -> str:
    if not price_fen:
        return "免费" if language == "zh-CN" else "free"
    yuan = f"{price_fen // 100}.{price_fen % 100:02d}"
    return f"¥{yuan}/人" if language == "zh-CN" else f"CNY {yuan} per person"


def render(kind: str, language: str, context: dict[str, Any]) -> Rendered:
    """Render one notice; `context` holds guardian, pupil, school_name, label, trip, …"""
    if kind not in NOTICE_KINDS:
        raise ValueError(f"no notice kind {kind!r}")
    language = language_of(language)
    name = f"{kind}.{language}"
    trip = context["trip"]
    values = {
        **context,
        "when": local_time(trip["starts_at"], trip["ends_at"], trip.get("timezone"), language),
        "price": price(trip.get("price_fen") or 0, language),
    }
    previous = context.get("previous")
    if previous:
        values["previous_when"] = local_time(previous["starts_at"], previous["ends_at"],
                                             trip.get("timezone"), language)
    return _blocks(name, values)


def _blocks(name: str, values: dict[str, Any]) -> Rendered:
    template = _ENV.get_template(f"{name}.j2")
    ctx = template.new_context(values)
    blocks = {block: "".join(template.blocks[block](ctx)).strip()
              for block in ("subject", "email", "short")}
    return Rendered(name, " ".join(blocks["subject"].split()), blocks["email"] + "\n",
                    " ".join(blocks["short"].split()))


def language_of(language: str | None) -> str:
    return language if language in LANGUAGES else "zh-CN"


def moment(stamp: str, language: str, timezone: str | None = None) -> str:
    """A deadline as people read it: `2026年12月9日（星期三）18:00（北京时间）`."""
    tz = zone(timezone)
    when = clock.parse(stamp).astimezone(tz)
    shanghai = tz.key == "Asia/Shanghai"
    if language == "zh-CN":
        return f"{_day(when, language)}{when:%H:%M}（{'北京时间' if shanghai else tz.key}）"
    return f"{_day(when, language)}, {when:%H:%M} ({'Beijing time' if shanghai else tz.key})"


def day_text(day: date, language: str) -> str:
    """A whole day (a tutor visit's): `2026年12月3日（星期四）` / `Thursday 3 December 2026`."""
    return _day(datetime(day.year, day.month, day.day), language)


def render_message(kind: str, language: str, values: dict[str, Any]) -> Rendered:
    """Render a message that is not about a claim's trip: an account link or a survey."""
    if kind not in (*ACCOUNT_KINDS, "survey"):
        raise ValueError(f"no message kind {kind!r}")
    return _blocks(f"{kind}.{language_of(language)}", values)
