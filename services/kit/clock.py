"""Time as Kepu stores it: UTC, as fixed-width ISO-8601 strings.

`2026-11-23T19:15:34.975000Z` sorts as it compares, reads the same in JSON and in the
database, and survives every update operator on both MongoDB 7 and the stand-in (which
turns datetimes written by `$set` into strings of another format). Store `stamp(t)`;
compare stored values with other stamps; parse with `parse()` when doing arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

_clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    return _clock()


def set_clock(fn: Callable[[], datetime] | None) -> None:
    """Tests inject a clock; None restores the real one."""
    global _clock
    _clock = fn or (lambda: datetime.now(UTC))


def stamp(when: datetime | None = None) -> str:
    when = now() if when is None else when
    if when.tzinfo is None:
        raise ValueError("naive datetime: Kepu times are timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    """A stamp, or any ISO-8601 time with an offset, as an aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    return value.astimezone(UTC)


def later(seconds: float, when: datetime | None = None) -> str:
    return stamp((now() if when is None else when) + timedelta(seconds=seconds))


def sort_key(stamp_: str, tiebreak: str) -> str:
    """A string key that sorts by time then id, for cursor pagination with `$gt`/`$lt`.

    Digits only: nx-27017 reads any string that begins like an ISO time as a time (to the
    second), which would make `2026-…Z|id` keys compare equal within a second.
    """
    return "".join(ch for ch in stamp_ if ch.isdigit()) + "|" + tiebreak
