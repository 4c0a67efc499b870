"""The bounds of a venue's dates and times: the sane years, the district's time zone."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from marshmallow import validate

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIRST_YEAR, LAST_YEAR = 2000, 2100  # sane years for a session, a series date or a vetting
SANE_DATE = validate.Range(min=date(FIRST_YEAR, 1, 1), max=date(LAST_YEAR, 12, 31),
                           error=f"must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31")


def sane_year(stamp: str) -> bool:
    """Whether a stamp (a four-digit year first, see kit.clock) falls in the sane years."""
    return FIRST_YEAR <= int(stamp[:4]) <= LAST_YEAR
