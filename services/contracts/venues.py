"""Venues: registration, tutors, sessions and seat holds (events and RPC payloads)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import (
    DISTRICT,
    NAME,
    EventData,
    Instant,
    Location,
    LocationData,
    Strict,
)
from services.kit import clock

# Plain values come before the registry import: other contracts modules import them while
# the registry is still loading this one (venues -> registry -> funding -> TUTOR_LEVELS).
TUTOR_LEVELS = ("junior", "intermediate", "senior", "expert")

VENUE_KINDS = (
    "science_museum", "planetarium", "zoo", "botanical_garden", "agricultural_park",
    "university", "research_institute", "youth_palace", "tech_park", "other",
)

from services.contracts.registry import event  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Contact(Strict):
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    email = fields.Email(load_default=None, allow_none=True)


def _zone(name: str) -> bool:
    """An IANA time zone name, e.g. Asia/Shanghai or Asia/Urumqi."""
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, ZoneInfoNotFoundError):
        raise ValidationError("not a known time zone, e.g. Asia/Shanghai") from None
    return True


class VenueRegistration(Strict):
    """What an admin sends to register a venue."""

    name = fields.String(required=True, validate=NAME)
    kind = fields.String(required=True, validate=validate.OneOf(VENUE_KINDS))
    district = fields.String(required=True, validate=DISTRICT)
    location = fields.Nested(Location, required=True)
    address = fields.String(required=True, validate=validate.Length(min=1, max=300))
    timezone = fields.String(load_default="Asia/Shanghai", validate=_zone)
    contact = fields.Nested(Contact, load_default=None, allow_none=True)
    accessibility = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=1000))


class Venue(Strict):
    venue_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    district = fields.String(required=True)
    location = fields.Nested(Location, required=True)
    address = fields.String(required=True)
    timezone = fields.String(required=True)
    contact = fields.Nested(Contact, allow_none=True)
    accessibility = fields.String(allow_none=True)
    created_at = Instant(required=True)


@event("venues.venue_registered", 1)
class VenueRegistered(EventData):
    """A venue joined the platform."""

    venue_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    district = fields.String(required=True)
    location = fields.Nested(LocationData, required=True)
    address = fields.String(required=True)
    timezone = fields.String(required=True)


class VenueChange(Strict):
    """What a venue's own staff may edit (`PATCH /v1/venues/{id}`); at least one field."""

    name = fields.String(validate=NAME)
    kind = fields.String(validate=validate.OneOf(VENUE_KINDS))
    location = fields.Nested(Location)
    address = fields.String(validate=validate.Length(min=1, max=300))
    contact = fields.Nested(Contact, allow_none=True)
    accessibility = fields.String(allow_none=True, validate=validate.Length(max=1000))

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("send at least one field to change")


@event("venues.venue_updated", 1)
class VenueUpdated(VenueRegistered):
    """A venue's staff changed its name, kind, address or location (the whole record)."""


# -- sessions --------------------------------------------------------------------------
CATEGORIES = ("science", "moral", "tutoring", "sports", "arts", "labour", "tradition",
              "innovation")
AUDIENCES = ("students", "family")
CLAIM_POLICIES = ("first_come", "window")
SESSION_STATUSES = ("open", "cancelled")  # "past" and "started" are derived from the clock
CATALOGUE_STATUSES = ("open", "started", "past", "cancelled")
HOLD_REFUSALS = ("full", "over_school_limit", "closed", "cancelled", "not_found")
MAX_CAPACITY = 10_000
MAX_OCCURRENCES = 200  # sessions in one series
MAX_DURATION = timedelta(days=7)
DEFAULT_CANCEL_CUTOFF_HOURS = 24


class Supervision(Strict):
    """At least `teachers` accompanying teachers for every `per_students` students."""

    teachers = fields.Integer(required=True, validate=validate.Range(min=1, max=10))
    per_students = fields.Integer(required=True, validate=validate.Range(min=1, max=100))


class SupervisionData(EventData):
    teachers = fields.Integer(required=True)
    per_students = fields.Integer(required=True)


def session_errors(values: dict[str, Any], now: datetime) -> dict[str, list[str]]:
    """The cross-field rules of a session, per field; empty when the session is sound.

    Shared by the publish schema (on what was sent) and the venues service (on a session
    with a change applied), so a rule reads the same at the gateway and in the service.
    """
    errors: dict[str, list[str]] = {}

    def refuse(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is not None and starts <= clock.stamp(now):
        refuse("starts_at", "must be in the future")
    if starts is not None and ends is not None:
        if ends <= starts:
            refuse("ends_at", "must be after starts_at")
        elif clock.parse(ends) - clock.parse(starts) > MAX_DURATION:
            refuse("ends_at", "a session lasts at most 7 days")
    grades = values.get("grades")
    if grades is not None and len(grades) == 2 and grades[0] > grades[1]:
        refuse("grades", "must be [min, max] with min <= max")
    capacity, limit = values.get("capacity"), values.get("max_seats_per_school")
    if capacity is not None and limit is not None and limit > capacity:
        refuse("max_seats_per_school", "must not exceed capacity")
    policy, closes = values.get("claim_policy"), values.get("window_closes_at")
    if policy == "window":
        if closes is None:
            refuse("window_closes_at", "is required for the window claim policy")
        elif starts is not None and closes >= starts:
            refuse("window_closes_at", "must be before starts_at")
        elif closes <= clock.stamp(now):
            refuse("window_closes_at", "must be in the future")
    elif policy == "first_come" and closes is not None:
        refuse("window_closes_at", "only applies to the window claim policy")
    return errors


class Weekly(Strict):
    """Every given ISO weekday (1 = Monday) from the first occurrence's day until `until`."""

    weekdays = fields.List(fields.Integer(validate=validate.Range(min=1, max=7)),
                           required=True, validate=validate.Length(min=1, max=7))
    until = fields.Date(required=True)


class Repeat(Strict):
    """A series: explicit local `dates`, or `weekly`; exactly one of the two."""

    dates = fields.List(fields.Date(), validate=validate.Length(min=1, max=MAX_OCCURRENCES))
    weekly = fields.Nested(Weekly)

    @validates_schema
    def _one_rule(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("dates" in data) == ("weekly" in data):
            raise ValidationError("give either dates or weekly", "_schema")
        dates = data.get("dates") or []
        if len(set(dates)) != len(dates):
            raise ValidationError("dates repeat", "dates")


class SessionDraft(Strict):
    """`POST /v1/venues/{id}/sessions`: one session, or a series when `repeat` is given.

    For a series, `starts_at`/`ends_at` give the first occurrence: its wall-clock times in
    the venue's time zone (and the window's lead time) apply to every occurrence.
    """

    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(max=5000))
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    audience = fields.String(required=True, validate=validate.OneOf(AUDIENCES))
    grades = fields.List(fields.Integer(validate=validate.Range(min=1, max=12)), required=True,
                         validate=validate.Length(equal=2))
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    capacity = fields.Integer(required=True, validate=validate.Range(min=1, max=MAX_CAPACITY))
    price_fen = fields.Integer(required=True, validate=validate.Range(min=0, max=10_000_000))
    claim_policy = fields.String(load_default="first_come",
                                 validate=validate.OneOf(CLAIM_POLICIES))
    window_closes_at = Instant(load_default=None, allow_none=True)
    max_seats_per_school = fields.Integer(load_default=None, allow_none=True,
                                          validate=validate.Range(min=1, max=MAX_CAPACITY))
    min_teachers_per_students = fields.Nested(Supervision, load_default=None, allow_none=True)
    cancel_cutoff_hours = fields.Integer(load_default=DEFAULT_CANCEL_CUTOFF_HOURS,
                                         validate=validate.Range(min=0, max=720))
    what_to_bring = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=2000))
    repeat = fields.Nested(Repeat, load_default=None, allow_none=True)

    @validates_schema
    def _rules(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors = session_errors(data, clock.now())
        if data.get("repeat"):  # each occurrence is checked by the service, in the venue's zone
            errors.pop("starts_at", None)
            if errors.get("window_closes_at") == ["must be in the future"]:
                errors.pop("window_closes_at")
        if errors:
            raise ValidationError(errors)


class SessionChange(Strict):
    """`PATCH /v1/sessions/{id}`: reschedule, resize or edit; at least one field.

    Capacity may not drop below the seats already held; a session that has started or was
    cancelled cannot change.
    """

    title = fields.String(validate=validate.Length(min=1, max=200))
    description = fields.String(allow_none=True, validate=validate.Length(max=5000))
    starts_at = Instant()
    ends_at = Instant()
    capacity = fields.Integer(validate=validate.Range(min=1, max=MAX_CAPACITY))
    window_closes_at = Instant()
    max_seats_per_school = fields.Integer(allow_none=True,
                                          validate=validate.Range(min=1, max=MAX_CAPACITY))
    min_teachers_per_students = fields.Nested(Supervision, allow_none=True)
    cancel_cutoff_hours = fields.Integer(validate=validate.Range(min=0, max=720))
    what_to_bring = fields.String(allow_none=True, validate=validate.Length(max=2000))

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("send at least one field to change")


class SessionCancellation(Strict):
    """`POST /v1/sessions/{id}/cancel`: the reason parents and schools are told."""

    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class DayOrInstant(fields.Field):
    """A catalogue bound: an ISO time with offset, or a date read in Asia/Shanghai.

    A date as `from` means the start of that day; as `to`, the end of it.
    """

    default_error_messages = {"invalid": "Not a date (YYYY-MM-DD) or an ISO-8601 time "
                                         "with a UTC offset."}

    def __init__(self, end_of_day: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            if len(value) == 10:
                day = date.fromisoformat(value) + timedelta(days=1 if self.end_of_day else 0)
                return clock.stamp(datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI))
            return clock.stamp(clock.parse(value))
        except ValueError:
            raise self.make_error("invalid") from None


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
    grade = fields.Integer(validate=validate.Range(min=1, max=12))
    grade_max = fields.Integer(validate=validate.Range(min=1, max=12))
    category = fields.String(validate=validate.OneOf(CATEGORIES))
    audience = fields.String(validate=validate.OneOf(AUDIENCES))
    free = fields.Boolean()
    available = fields.Boolean()  # true: only sessions with seats left
    venue_id = fields.String(validate=validate.Length(min=1, max=64))
    series_id = fields.String(validate=validate.Length(min=1, max=64))
    district = fields.String(validate=DISTRICT)
    status = fields.String(load_default="open")
    near = Near(metadata={"type": "string", "example": "31.2304,121.4737",
                          "description": "lat,lon: sort by distance, add distance_km"})
    radius_km = fields.Float(validate=validate.Range(min=0.1, max=20_000))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))
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


class SessionView(Strict):
    """A session as the venues service answers `get_session` and the catalogue.

    Booking relies on: session_id, venue_id, grades, audience, starts_at, ends_at,
    capacity, seats_left, claim_policy, window_closes_at, max_seats_per_school,
    min_teachers_per_students, cancel_cutoff_hours, status, timezone, venue.
    """

    session_id = fields.String(required=True)
    series_id = fields.String(allow_none=True)
    venue_id = fields.String(required=True)
    title = fields.String(required=True)
    description = fields.String(allow_none=True)
    category = fields.String(required=True)
    audience = fields.String(required=True)
    grades = fields.List(fields.Integer(), required=True)  # [min, max]
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    capacity = fields.Integer(required=True)
    seats_left = fields.Integer(required=True)
    price_fen = fields.Integer(required=True)
    claim_policy = fields.String(required=True)
    window_closes_at = Instant(allow_none=True)
    max_seats_per_school = fields.Integer(allow_none=True)
    min_teachers_per_students = fields.Nested(Supervision, allow_none=True)
    cancel_cutoff_hours = fields.Integer(required=True)
    what_to_bring = fields.String(allow_none=True)
    status = fields.String(required=True)
    timezone = fields.String(required=True)
    venue = fields.Dict(required=True)  # {name, address, district, location, kind}
    distance_km = fields.Float(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    created_at = Instant()


class SeriesView(Strict):
    """What publishing a series answers: every occurrence, in time order."""

    series_id = fields.String(required=True)
    sessions = fields.List(fields.Nested(SessionView), required=True)


class SeatsView(Strict):
    """`seats(session_id)`: the counter and the holds it is the sum of.

    Always `seats_left == capacity - held` and `held == sum(holds.values())`.
    """

    session_id = fields.String(required=True)
    capacity = fields.Integer(required=True)
    seats_left = fields.Integer(required=True)
    held = fields.Integer(required=True)
    holds = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    per_school = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class HoldAnswer(Strict):
    """`hold(session_id, claim_id, school_id, seats)`: expected refusals are answers, not errors.

    ok=True: `seats` are held for `claim_id` (a repeat of the same hold answers the same).
    ok=False: `reason` is one of HOLD_REFUSALS; nothing changed.
    """

    ok = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, validate=validate.OneOf(HOLD_REFUSALS))
    seats = fields.Integer(required=True)
    seats_left = fields.Integer(required=True)
    repeated = fields.Boolean(load_default=False)  # True: this claim already held these seats


class ReleaseAnswer(Strict):
    """`release(session_id, claim_id)`: idempotent; `released` is 0 on a repeat."""

    released = fields.Integer(required=True)
    seats_left = fields.Integer(required=True)


@event("venues.session_published", 1)
class SessionPublished(EventData):
    """A session is open for claims (one per occurrence of a series)."""

    session_id = fields.String(required=True)
    series_id = fields.String(allow_none=True)
    venue_id = fields.String(required=True)
    title = fields.String(required=True)
    category = fields.String(required=True)
    audience = fields.String(required=True)
    grades = fields.List(fields.Integer(), required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    capacity = fields.Integer(required=True)
    price_fen = fields.Integer(required=True)
    claim_policy = fields.String(required=True)
    window_closes_at = Instant(allow_none=True)
    timezone = fields.String(required=True)


@event("venues.session_rescheduled", 1)
class SessionRescheduled(EventData):
    """A session's time changed; claims stand, parents must be told."""

    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    previous_starts_at = Instant(required=True)
    previous_ends_at = Instant(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    timezone = fields.String(required=True)


@event("venues.session_cancelled", 1)
class SessionCancelled(EventData):
    """The venue cancelled a session; every claim on it is cancelled with `reason`."""

    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    reason = fields.String(required=True)
    starts_at = Instant(required=True)


@event("venues.capacity_changed", 1)
class CapacityChanged(EventData):
    """A session's capacity changed; more seats may go to the waitlist."""

    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    capacity = fields.Integer(required=True)
    seats_left = fields.Integer(required=True)


@event("venues.session_updated", 1)
class SessionUpdated(EventData):
    """Details parents or schools see changed (title, what to bring, cut-off, limits).

    Time changes are `session_rescheduled` and capacity changes `capacity_changed`.
    """

    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    changed = fields.List(fields.String(), required=True)
    title = fields.String(required=True)
    what_to_bring = fields.String(allow_none=True)
    cancel_cutoff_hours = fields.Integer(required=True)
    max_seats_per_school = fields.Integer(allow_none=True)
    min_teachers_per_students = fields.Nested(SupervisionData, allow_none=True)
    window_closes_at = Instant(allow_none=True)


# -- tutors (校外科技辅导员) ---------------------------------------------------------------
class TutorView(Strict):
    """A tutor as `get_tutor` answers; `bookable` is False once certification has expired."""

    tutor_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    name = fields.String(required=True)
    level = fields.String(required=True)
    subjects = fields.List(fields.String(), required=True)
    certified_until = fields.Date(required=True)
    bookable = fields.Boolean(required=True)
    created_at = Instant()


class TutorRegistration(Strict):
    """`POST /v1/venues/{id}/tutors`: a tutor and the vetting record."""

    name = fields.String(required=True, validate=NAME)
    level = fields.String(required=True, validate=validate.OneOf(TUTOR_LEVELS))
    subjects = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                           required=True, validate=validate.Length(min=1, max=20))
    certified_until = fields.Date(required=True)

    @validates_schema
    def _current(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["certified_until"] < clock.now().astimezone(SHANGHAI).date():
            raise ValidationError("has already passed: renew the vetting first",
                                  "certified_until")


class TutorChange(Strict):
    """`PATCH /v1/venues/{id}/tutors/{tutor_id}`: a new level, subjects or renewed vetting."""

    level = fields.String(validate=validate.OneOf(TUTOR_LEVELS))
    subjects = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                           validate=validate.Length(min=1, max=20))
    certified_until = fields.Date()

    @validates_schema
    def _not_empty(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("send at least one field to change")


@event("venues.tutor_registered", 1)
class TutorRegistered(EventData):
    """A venue registered a science tutor who may be booked into schools."""

    tutor_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    name = fields.String(required=True)
    level = fields.String(required=True)
    subjects = fields.List(fields.String(), required=True)
    certified_until = fields.Date(required=True)


class TutorQuery(Strict):
    """`GET /v1/venues/{id}/tutors`: a page at a time."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(min=1, max=300))


@event("venues.tutor_updated", 1)
class TutorUpdated(TutorRegistered):
    """A tutor's level, subjects or vetting changed (the whole record)."""
