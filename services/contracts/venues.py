"""Venues: registration, tutors, sessions and seat holds (events and RPC payloads)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import (
    DISTRICT,
    NAME,
    Day,
    EventData,
    Instant,
    Location,
    LocationData,
    Strict,
    Whole,
    time_zone,
)
from services.contracts.registry import event
from services.kit import clock

TUTOR_LEVELS = ("junior", "intermediate", "senior", "expert")

VENUE_KINDS = (
    "science_museum", "planetarium", "zoo", "botanical_garden", "agricultural_park",
    "university", "research_institute", "youth_palace", "tech_park", "other",
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Contact(Strict):
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    email = fields.Email(load_default=None, allow_none=True)



DISTRICT_ID = validate.Length(min=1, max=64)


class VenueRegistration(Strict):
    """What an admin sends to register a venue.

    `district_id` names the district (identity's organisation). While the move from names
    to ids lasts, the old `district` name alone is still accepted (docs/districts.md).
    """

    name = fields.String(required=True, validate=NAME)
    kind = fields.String(required=True, validate=validate.OneOf(VENUE_KINDS))
    district_id = fields.String(load_default=None, validate=DISTRICT_ID)
    district = fields.String(load_default=None, validate=DISTRICT)
    location = fields.Nested(Location, required=True)
    address = fields.String(required=True, validate=validate.Length(min=1, max=300))
    timezone = fields.String(load_default="Asia/Shanghai", validate=time_zone)
    contact = fields.Nested(Contact, load_default=None, allow_none=True)
    accessibility = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=1000))

    @validates_schema
    def _district(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("district_id") and not data.get("district"):
            raise ValidationError("required: the district's id (from POST /v1/districts)",
                                  "district_id")


class Venue(Strict):
    venue_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    district_id = fields.String(allow_none=True)  # None: registered by name, not yet migrated
    district = fields.String(required=True)  # the district's name, for people
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
    # added: the record's version (0 when registered, +1 per edit), so a directory kept
    # from these events can ignore an older update delivered late; None from older producers
    version = Whole(load_default=None, allow_none=True)
    # added: identity's district id (None for a venue registered by name before the
    # migration linked it)
    district_id = fields.String(load_default=None, allow_none=True)


class VenueQuery(Strict):
    """`GET /v1/venues`: venues, narrowed to a district and/or a kind, paged."""

    district_id = fields.String(validate=DISTRICT_ID)
    kind = fields.String(validate=validate.OneOf(VENUE_KINDS))
    limit = Whole(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(min=1, max=200))


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
    """A venue's staff changed its name, kind, address or location.

    The whole directory record after the edit (name, kind, district, address, location,
    timezone, version), so a consumer replaces its copy instead of merging a change.
    """


# -- sessions --------------------------------------------------------------------------
CATEGORIES = ("science", "moral", "tutoring", "sports", "arts", "labour", "tradition",
              "innovation")
# students: school claims (booking); family: households book (admissions, 亲子);
# teachers: school staff book individual training seats (admissions)
AUDIENCES = ("students", "family", "teachers")
PERSON_CATEGORIES = ("adult", "child", "student")
MAX_PEOPLE_PER_BOOKING = 20
CLAIM_POLICIES = ("first_come", "window")
SESSION_STATUSES = ("open", "cancelled")  # "past" and "started" are derived from the clock
CATALOGUE_STATUSES = ("open", "started", "past", "cancelled")
# over_school_limit: over the party's limit (a school's, or a household's on family sessions)
# stale: the caller's `expected_version` is not the session's (it changed since the checks)
HOLD_REFUSALS = ("full", "over_school_limit", "closed", "cancelled", "not_found", "stale")
MAX_CAPACITY = 10_000
MAX_OCCURRENCES = 200  # sessions in one series
MAX_DURATION = timedelta(days=7)
DEFAULT_CANCEL_CUTOFF_HOURS = 24
FIRST_YEAR, LAST_YEAR = 2000, 2100  # sane years for a session, a series date or a vetting
SANE_DATE = validate.Range(min=date(FIRST_YEAR, 1, 1), max=date(LAST_YEAR, 12, 31),
                           error=f"must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31")


def _sane(stamp: str) -> bool:
    """Whether a stamp (a four-digit year first, see kit.clock) falls in the sane years."""
    return FIRST_YEAR <= int(stamp[:4]) <= LAST_YEAR


class SessionTime(Instant):
    """An Instant in a sane year (UTC), so a typo such as year 500 is a 422 naming the field.

    No session is that far from now, and a year that far broke stamping and parsing
    further on (hardening #16.5: a 500 for input).
    """

    default_error_messages = {
        **Instant.default_error_messages,
        "range": f"Must be a time between the years {FIRST_YEAR} and {LAST_YEAR}."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        stamp = super()._deserialize(value, attr, data, **kwargs)
        if not _sane(stamp):
            raise self.make_error("range")
        return stamp


class Prices(Strict):
    """Prices per person category in fen (分); a category left out costs `price_fen`."""

    adult = Whole(load_default=None, allow_none=True,
                  validate=validate.Range(min=0, max=10_000_000))
    child = Whole(load_default=None, allow_none=True,
                  validate=validate.Range(min=0, max=10_000_000))
    student = Whole(load_default=None, allow_none=True,
                    validate=validate.Range(min=0, max=10_000_000))


class Supervision(Strict):
    """At least `teachers` accompanying teachers for every `per_students` students."""

    teachers = Whole(required=True, validate=validate.Range(min=1, max=10))
    per_students = Whole(required=True, validate=validate.Range(min=1, max=100))


class SupervisionData(EventData):
    teachers = Whole(required=True)
    per_students = Whole(required=True)


Refusals = list[tuple[str, str]]  # (field, message)


def _starts_in_future(values: dict[str, Any], now: datetime) -> Refusals:
    starts = values.get("starts_at")
    if starts is not None and starts <= clock.stamp(now):
        return [("starts_at", "must be in the future")]
    return []


def _ends_after_start(values: dict[str, Any], now: datetime) -> Refusals:
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is None or ends is None:
        return []
    if ends <= starts:
        return [("ends_at", "must be after starts_at")]
    if clock.parse(ends) - clock.parse(starts) > MAX_DURATION:
        return [("ends_at", "a session lasts at most 7 days")]
    return []


def _grades_in_order(values: dict[str, Any], now: datetime) -> Refusals:
    grades = values.get("grades")
    if grades is not None and len(grades) == 2 and grades[0] > grades[1]:
        return [("grades", "must be [min, max] with min <= max")]
    return []


def _school_limit_within_capacity(values: dict[str, Any], now: datetime) -> Refusals:
    capacity, limit = values.get("capacity"), values.get("max_seats_per_school")
    if capacity is not None and limit is not None and limit > capacity:
        return [("max_seats_per_school", "must not exceed capacity")]
    return []


def _household_limits_for_families(values: dict[str, Any], now: datetime) -> Refusals:
    """Household limits mean something only where households book (family sessions)."""
    audience = values.get("audience")
    if audience is None:  # a change to a published session: these are set at publishing
        return []
    if audience == "family":
        wrong = []
        if values.get("max_seats_per_school") is not None:
            wrong.append(("max_seats_per_school", "family sessions: use max_seats_per_household"))
        limit, capacity = values.get("max_seats_per_household"), values.get("capacity")
        if limit is not None and capacity is not None and limit > capacity:
            wrong.append(("max_seats_per_household", "must not exceed capacity"))
        return wrong
    return [(name, "only applies to family sessions") for name in
            ("max_seats_per_household", "households_may_book_again")
            if values.get(name) not in (None, False)]


def _window_fits_policy(values: dict[str, Any], now: datetime) -> Refusals:
    """A window session needs a window that closes in the future, before the session."""
    policy, closes = values.get("claim_policy"), values.get("window_closes_at")
    starts = values.get("starts_at")
    if policy == "first_come" and closes is not None:
        return [("window_closes_at", "only applies to the window claim policy")]
    if policy != "window":
        return []
    if closes is None:
        return [("window_closes_at", "is required for the window claim policy")]
    if starts is not None and closes >= starts:
        return [("window_closes_at", "must be before starts_at")]
    if closes <= clock.stamp(now):
        return [("window_closes_at", "must be in the future")]
    return []


SESSION_RULES = (_starts_in_future, _ends_after_start, _grades_in_order,
                 _school_limit_within_capacity, _window_fits_policy,
                 _household_limits_for_families)


def session_errors(values: dict[str, Any], now: datetime) -> dict[str, list[str]]:
    """The cross-field rules of a session, per field; empty when the session is sound.

    Shared by the publish schema (on what was sent) and the venues service (on a session
    with a change applied), so a rule reads the same at the gateway and in the service.
    Each rule is one function of `SESSION_RULES`, answering the (field, message) it breaks.
    """
    errors: dict[str, list[str]] = {}
    for rule in SESSION_RULES:
        for name, message in rule(values, now):
            errors.setdefault(name, []).append(message)
    return errors


class Weekly(Strict):
    """Every given ISO weekday (1 = Monday) from the first occurrence's day until `until`."""

    weekdays = fields.List(Whole(validate=validate.Range(min=1, max=7)),
                           required=True, validate=validate.Length(min=1, max=7))
    until = Day(required=True, validate=SANE_DATE)


class Repeat(Strict):
    """A series: explicit local `dates`, or `weekly`; exactly one of the two."""

    dates = fields.List(Day(validate=SANE_DATE),
                        validate=validate.Length(min=1, max=MAX_OCCURRENCES))
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
    grades = fields.List(Whole(validate=validate.Range(min=1, max=12)), required=True,
                         validate=validate.Length(equal=2))
    starts_at = SessionTime(required=True)
    ends_at = SessionTime(required=True)
    capacity = Whole(required=True, validate=validate.Range(min=1, max=MAX_CAPACITY))
    price_fen = Whole(required=True, validate=validate.Range(min=0, max=10_000_000))
    claim_policy = fields.String(load_default="first_come",
                                 validate=validate.OneOf(CLAIM_POLICIES))
    window_closes_at = SessionTime(load_default=None, allow_none=True)
    max_seats_per_school = Whole(load_default=None, allow_none=True,
                                          validate=validate.Range(min=1, max=MAX_CAPACITY))
    min_teachers_per_students = fields.Nested(Supervision, load_default=None, allow_none=True)
    cancel_cutoff_hours = Whole(load_default=DEFAULT_CANCEL_CUTOFF_HOURS,
                                         validate=validate.Range(min=0, max=720))
    what_to_bring = fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(max=2000))
    repeat = fields.Nested(Repeat, load_default=None, allow_none=True)
    # family and teacher sessions (admissions): prices per person category, people per
    # booking, seats per household (the hold's per-party limit) and whether a household
    # may book the same session more than once
    prices_fen = fields.Nested(Prices, load_default=None, allow_none=True)
    max_people_per_booking = Whole(load_default=None, allow_none=True, validate=validate.Range(
        min=1, max=MAX_PEOPLE_PER_BOOKING))
    max_seats_per_household = Whole(load_default=None, allow_none=True,
                                    validate=validate.Range(min=1, max=MAX_CAPACITY))
    households_may_book_again = fields.Boolean(load_default=False)

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
    starts_at = SessionTime()
    ends_at = SessionTime()
    capacity = Whole(validate=validate.Range(min=1, max=MAX_CAPACITY))
    window_closes_at = SessionTime()
    max_seats_per_school = Whole(allow_none=True,
                                          validate=validate.Range(min=1, max=MAX_CAPACITY))
    min_teachers_per_students = fields.Nested(Supervision, allow_none=True)
    cancel_cutoff_hours = Whole(validate=validate.Range(min=0, max=720))
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
        if not _sane(stamp):
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
    grades = fields.List(Whole(), required=True)  # [min, max]
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    capacity = Whole(required=True)
    seats_left = Whole(required=True)
    price_fen = Whole(required=True)
    claim_policy = fields.String(required=True)
    window_closes_at = Instant(allow_none=True)
    max_seats_per_school = Whole(allow_none=True)
    min_teachers_per_students = fields.Nested(Supervision, allow_none=True)
    cancel_cutoff_hours = Whole(required=True)
    what_to_bring = fields.String(allow_none=True)
    status = fields.String(required=True)
    timezone = fields.String(required=True)
    venue = fields.Dict(required=True)  # {name, address, district, location, kind}
    distance_km = fields.Float(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    created_at = Instant()
    prices_fen = fields.Dict(keys=fields.String(), values=Whole())  # adult, child, student
    max_people_per_booking = Whole(allow_none=True)
    max_seats_per_household = Whole(allow_none=True)
    households_may_book_again = fields.Boolean()
    # +1 per edit or cancellation (holds leave it): booking passes the version it checked a
    # claim against to `hold(..., expected_version)`
    version = Whole(allow_none=True)


class SeriesView(Strict):
    """What publishing a series answers: every occurrence, in time order."""

    series_id = fields.String(required=True)
    sessions = fields.List(fields.Nested(SessionView), required=True)


class SeatsView(Strict):
    """`seats(session_id)`: the counter and the holds it is the sum of.

    Always `seats_left == capacity - held` and `held == sum(holds.values())`.
    """

    session_id = fields.String(required=True)
    capacity = Whole(required=True)
    seats_left = Whole(required=True)
    held = Whole(required=True)
    holds = fields.Dict(keys=fields.String(), values=Whole(), required=True)
    per_school = fields.Dict(keys=fields.String(), values=Whole(), required=True)


class HoldAnswer(Strict):
    """`hold(session_id, claim_id, school_id, seats, expected_version=None)`: expected
    refusals are answers, not errors.

    ok=True: `seats` are held for `claim_id` (a repeat of the same hold answers the same).
    ok=False: `reason` is one of HOLD_REFUSALS; nothing changed. `stale` only when an
    `expected_version` was passed and the session's version differs (a cancelled or started
    session still answers `cancelled` / `closed`).
    """

    ok = fields.Boolean(required=True)
    reason = fields.String(allow_none=True, validate=validate.OneOf(HOLD_REFUSALS))
    seats = Whole(required=True)
    seats_left = Whole(required=True)
    repeated = fields.Boolean(load_default=False)  # True: this claim already held these seats


class ReleaseAnswer(Strict):
    """`release(session_id, claim_id)`: idempotent; `released` is 0 on a repeat."""

    released = Whole(required=True)
    seats_left = Whole(required=True)


@event("venues.session_published", 1)
class SessionPublished(EventData):
    """A session is open for claims (one per occurrence of a series)."""

    session_id = fields.String(required=True)
    series_id = fields.String(allow_none=True)
    venue_id = fields.String(required=True)
    title = fields.String(required=True)
    category = fields.String(required=True)
    audience = fields.String(required=True)
    grades = fields.List(Whole(), required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    capacity = Whole(required=True)
    price_fen = Whole(required=True)
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
    capacity = Whole(required=True)
    seats_left = Whole(required=True)


@event("venues.session_updated", 1)
class SessionUpdated(EventData):
    """Details parents or schools see changed (title, what to bring, cut-off, limits, window).

    Carries the session's current values after the change, `changed` naming what changed:
    a moved claim window arrives as `window_closes_at` (with `claim_policy`), so booking
    can follow it. Time changes are `session_rescheduled` and capacity `capacity_changed`.
    """

    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    changed = fields.List(fields.String(), required=True)
    title = fields.String(required=True)
    what_to_bring = fields.String(allow_none=True)
    cancel_cutoff_hours = Whole(required=True)
    max_seats_per_school = Whole(allow_none=True)
    min_teachers_per_students = fields.Nested(SupervisionData, allow_none=True)
    window_closes_at = Instant(allow_none=True)  # current: a window moved is in `changed`
    claim_policy = fields.String(load_default=None, allow_none=True)  # added; None if older


# -- tutors (校外科技辅导员) ---------------------------------------------------------------
class TutorView(Strict):
    """A tutor as `get_tutor` answers; `bookable` is False once certification has expired."""

    tutor_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    name = fields.String(required=True)
    level = fields.String(required=True)
    subjects = fields.List(fields.String(), required=True)
    certified_until = Day(required=True)
    bookable = fields.Boolean(required=True)
    created_at = Instant()


class TutorRegistration(Strict):
    """`POST /v1/venues/{id}/tutors`: a tutor and the vetting record."""

    name = fields.String(required=True, validate=NAME)
    level = fields.String(required=True, validate=validate.OneOf(TUTOR_LEVELS))
    subjects = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                           required=True, validate=validate.Length(min=1, max=20))
    certified_until = Day(required=True, validate=SANE_DATE)

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
    certified_until = Day(validate=SANE_DATE)

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
    certified_until = Day(required=True)


class TutorQuery(Strict):
    """`GET /v1/venues/{id}/tutors`: a page at a time."""

    limit = Whole(load_default=50, validate=validate.Range(min=1, max=100))
    cursor = fields.String(validate=validate.Length(min=1, max=300))


@event("venues.tutor_updated", 1)
class TutorUpdated(TutorRegistered):
    """A tutor's level, subjects or vetting changed (the whole record)."""
