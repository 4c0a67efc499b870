"""Time as Kepu stores it: UTC, as fixed-width ISO-8601 strings.

`2026-11-23T19:15:34.975000Z` sorts as it compares, reads the same in JSON and in the
database, and survives every update operator on both MongoDB 7 and the stand-in (which
turns datetimes written by `$set` into strings of another format: kit/mongo.py,
"nx-27017"). Store `stamp(t)`; compare stored values with other stamps; parse with
`parse()` when doing arithmetic. The one stored datetime is a TTL field (`expiry`).
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
    """`when` (default now) as a fixed-width stamp; the year always has four digits.

    strftime's `%Y` writes year 500 as `500`, which `parse` then refuses: a stamp must
    read back, so the year is padded here rather than left to the platform.
    """
    when = now() if when is None else when
    if when.tzinfo is None:
        raise ValueError("naive datetime: Kepu times are timezone-aware")
    try:
        when = when.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None
    # formatted by hand: strftime was a few per cent of booking's and notifications' CPU
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:"
            f"{when.minute:02d}:{when.second:02d}.{when.microsecond:06d}Z")


def parse(text: str) -> datetime:
    """A stamp, or any ISO-8601 time with an offset, as an aware UTC datetime.

    Raises ValueError for anything else, including a time that has no UTC equivalent
    (year 1 at +08:00).
    """
    if not isinstance(text, str) or len(text) > 64:
        raise ValueError("not an ISO-8601 time")
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {text!r}")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range") from None


def later(seconds: float, when: datetime | None = None) -> str:
    return stamp((now() if when is None else when) + timedelta(seconds=seconds))


def expiry(after: timedelta) -> datetime:
    """A BSON datetime `after` from now by the REAL clock, for a TTL-indexed `expires_at`.

    The server's TTL monitor judges expiry by its own wall clock, so a test that moves
    kit.clock into the past must not make records expire at once. Write it on insert only:
    nx-27017 turns a datetime written by `$set` into a string (kit/mongo.py, "nx-27017").
    """
    return datetime.now(UTC) + after

