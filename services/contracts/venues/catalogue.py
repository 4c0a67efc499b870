"""The catalogue's query (课程菜单): bounds by day or instant, and `near=lat,lon`."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import (
    DISTRICT,
    Strict,
    Whole,
)
from services.contracts.venues.bounds import FIRST_YEAR, LAST_YEAR, SHANGHAI, sane_year
from services.contracts.venues.places import DISTRICT_ID
from services.contracts.venues.sessions import AUDIENCES, CATALOGUE_STATUSES, CATEGORIES
from services.kit import clock


class DayOrInstant(fields.Field):
    """A catalogue bound: an ISO time with offset, or a date read in Asia/Shanghai.

    A date as `from` means the start of that day; as `to`, the end of it.
    """

    default_error_messages = {"invalid": "Not a date (YYYY-MM-DD) or an ISO-8601 time "
                                         "with a UTC offset.",
                              "range": f"Must be between the years {FIRST_YEAR} and "
                                       f"{LAST_YEAR}."}

    def __init__(self, end_of_day: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            if len(value) == 10:
                day = date.fromisoformat(value) + timedelta(days=1 if self.end_of_day else 0)
                stamp = clock.stamp(datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI))
            else:
                stamp = clock.stamp(clock.parse(value))
        except (ValueError, OverflowError):
            raise self.make_error("invalid") from None
        if not sane_year(stamp):
            raise self.make_error("range")
        return stamp


class Near(fields.Field):
    """`near=lat,lon`."""

    default_error_messages = {"invalid": "Give lat,lon in degrees, e.g. 31.23,121.47."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        try:
            lat, lon = (float(part) for part in str(value).split(","))
        except ValueError:
            raise self.make_error("invalid") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise self.make_error("invalid")
        return {"lat": lat, "lon": lon}


class CatalogueQuery(Strict):
    """`GET /v1/sessions`: the district's course menu (课程菜单).

    Grades overlap: `grade=5` finds sessions for grade 5; `grade_max=6` with `grade=4`
    finds those for any of 4-6. `status` is a comma list of open, started, past and
    cancelled (default open: not yet started, not cancelled).
    """

    from_ = DayOrInstant(data_key="from", metadata={
        "type": "string", "description": "sessions starting at or after: a date "
        "(YYYY-MM-DD, Asia/Shanghai) or an ISO time with offset"})
    to = DayOrInstant(end_of_day=True, metadata={
        "type": "string", "description": "sessions starting before: a time, or the end of "
                                         "a date (inclusive)"})
    grade = Whole(validate=validate.Range(min=1, max=12))
    grade_max = Whole(validate=validate.Range(min=1, max=12))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    audience = fields.String(validate=validate.OneOf(AUDIENCES))
    free = fields.Boolean()
    available = fields.Boolean()  # true: only sessions with seats left
    venue_id = fields.String(validate=validate.Length(min=1, max=64))
    series_id = fields.String(validate=validate.Length(min=1, max=64))
    district = fields.String(validate=DISTRICT)
    district_id = fields.String(validate=DISTRICT_ID)
    status = fields.String(load_default="open")
    near = Near(metadata={"type": "string", "example": "31.2304,121.4737",
                          "description": "lat,lon: sort by distance, add distance_km"})
    radius_km = fields.Float(validate=validate.Range(min=0.1, max=20_000))
    limit = Whole(load_default=20, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(min=1, max=300))

    @validates_schema
    def _coherent(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        wanted = [s.strip() for s in data.get("status", "open").split(",") if s.strip()]
        if wanted != ["all"] and (not wanted or set(wanted) - set(CATALOGUE_STATUSES)):
            errors["status"] = [f"a comma list of {', '.join(CATALOGUE_STATUSES)}, or all"]
        if "radius_km" in data and "near" not in data:
            errors["radius_km"] = ["needs near=lat,lon"]
        if "grade_max" in data and data["grade_max"] < data.get("grade", 1):
            errors["grade_max"] = ["must not be below grade"]
        if data.get("from_") and data.get("to") and data["to"] <= data["from_"]:
            errors["to"] = ["must be after from"]
        if errors:
            raise ValidationError(errors)
