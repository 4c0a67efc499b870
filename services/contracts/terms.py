"""School terms, the period budgets, priorities and reports count in.

A Chinese school year has an autumn term (September to January) and a spring term
(February to July); the summer holiday belongs to the spring term that precedes it, so
"this term" for a July holiday session is the spring term. Terms are named
`2026-autumn` (starting in 2026) and `2027-spring`.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
TERM_PATTERN = re.compile(r"^(\d{4})-(spring|autumn)$")


def term_of(when: date | datetime) -> str:
    """The term a day (or an instant, read in Asia/Shanghai) falls in."""
    if isinstance(when, datetime):
        when = when.astimezone(SHANGHAI).date()
    if when.month == 1:
        return f"{when.year - 1}-autumn"
    if when.month <= 8:
        return f"{when.year}-spring"
    return f"{when.year}-autumn"


def term_bounds(term: str) -> tuple[date, date]:
    """First and last day of a term (inclusive)."""
    match = TERM_PATTERN.match(term)
    if not match:
        raise ValueError(f"not a term: {term!r} (like 2026-autumn)")
    year, half = int(match.group(1)), match.group(2)
    if half == "spring":
        return date(year, 2, 1), date(year, 8, 31)
    return date(year, 9, 1), date(year + 1, 1, 31)
