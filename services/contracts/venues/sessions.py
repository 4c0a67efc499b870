"""Sessions: drafts, changes, series, views, seat holds and their events."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import (
    Day,
    EventData,
    Instant,
    Strict,
    Whole,
)
from services.contracts.registry import event
from services.contracts.venues.bounds import FIRST_YEAR, LAST_YEAR, SANE_DATE, sane_year
from services.contracts.venues.session_rules import session_errors
from services.kit import clock

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
DEFAULT_CANCEL_CUTOFF_HOURS = 24



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
        if not sane_year(stamp):
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
