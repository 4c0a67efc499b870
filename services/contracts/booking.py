"""Booking: schools, claims, batches, attendance and tutor visits (events and RPC payloads)."""

from __future__ import annotations

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
)
from services.contracts.registry import event

DISTRICT_ID = validate.Length(min=1, max=64)


def _needs_district(data: dict) -> None:
    if not data.get("district_id") and not data.get("district"):
        raise ValidationError("required: the district's id (from POST /v1/districts)",
                              "district_id")


class SchoolRegistration(Strict):
    """What an admin sends to register a school.

    `district_id` names the district (identity's organisation). While the move from names
    to ids lasts, the old `district` name alone is still accepted (docs/districts.md).
    """

    name = fields.String(required=True, validate=NAME)
    district_id = fields.String(load_default=None, validate=DISTRICT_ID)
    district = fields.String(load_default=None, validate=DISTRICT)
    location = fields.Nested(Location, required=True)
    rural = fields.Boolean(load_default=False)
    under_resourced = fields.Boolean(load_default=False)
    students = Whole(required=True, validate=validate.Range(min=1, max=100_000))

    @validates_schema
    def _district(self, data: dict, **kwargs: object) -> None:
        _needs_district(data)


class School(Strict):
    school_id = fields.String(required=True)
    name = fields.String(required=True)
    district_id = fields.String(allow_none=True)  # None: registered by name, not yet migrated
    district = fields.String(required=True)  # the district's name, for people
    location = fields.Nested(Location, required=True)
    rural = fields.Boolean(required=True)
    under_resourced = fields.Boolean(required=True)
    students = Whole(required=True)
    created_at = Instant(required=True)


@event("booking.school_registered", 1)
class SchoolRegistered(EventData):
    """A school joined the platform."""

    school_id = fields.String(required=True)
    name = fields.String(required=True)
    district = fields.String(required=True)
    # added: identity's district id (None for a school registered by name before the
    # migration linked it)
    district_id = fields.String(load_default=None, allow_none=True)
    location = fields.Nested(LocationData, required=True)
    rural = fields.Boolean(required=True)
    under_resourced = fields.Boolean(required=True)
    students = Whole(required=True)


# -- claims ------------------------------------------------------------------------------
CLAIM_STATUSES = ("pending", "confirmed", "waitlisted", "rejected", "cancelled")


class GroupData(EventData):
    """One class on a trip: `label` matches the class roster (e.g. 五年级(2)班)."""

    label = fields.String(required=True)
    grade = Whole(required=True)
    students = Whole(required=True)
    teachers = Whole(required=True)


class TripData(EventData):
    """What parents are told about a trip, carried on the claim events."""

    session_id = fields.String(required=True)
    title = fields.String(required=True)
    venue_id = fields.String(required=True)
    venue_name = fields.String(required=True)
    venue_address = fields.String(required=True)
    starts_at = Instant(required=True)
    ends_at = Instant(required=True)
    timezone = fields.String(required=True)
    what_to_bring = fields.String(allow_none=True)
    price_fen = Whole(required=True)


@event("booking.claim_confirmed", 1)
class ClaimConfirmed(EventData):
    """Seats are held for a school's classes; parents of those classes are told."""

    claim_id = fields.String(required=True)
    school_id = fields.String(required=True)
    school_name = fields.String(required=True)
    session_id = fields.String(required=True)
    groups = fields.List(fields.Nested(GroupData), required=True)
    seats = Whole(required=True)
    trip = fields.Nested(TripData, required=True)


@event("booking.claim_waitlisted", 1)
class ClaimWaitlisted(EventData):
    """No seats now; the claim waits in line and is confirmed if seats come back."""

    claim_id = fields.String(required=True)
    school_id = fields.String(required=True)
    session_id = fields.String(required=True)
    position = Whole(allow_none=True)


@event("booking.claim_cancelled", 1)
class ClaimCancelled(EventData):
    """A claim ended: by its school, because the venue cancelled, or by the system."""

    claim_id = fields.String(required=True)
    school_id = fields.String(required=True)
    session_id = fields.String(required=True)
    previous_status = fields.String(required=True)
    cancelled_by = fields.String(required=True, validate=validate.OneOf(
        ("school", "venue", "system")))
    reason = fields.String(required=True)
    groups = fields.List(fields.Nested(GroupData), required=True)
    trip = fields.Nested(TripData, required=True)


@event("booking.allocation_completed", 1)
class AllocationCompleted(EventData):
    """A window session's claims were allocated once, reproducibly from `seed`."""

    session_id = fields.String(required=True)
    seed = fields.String(required=True)
    confirmed = fields.List(fields.String(), required=True)
    waitlisted = fields.List(fields.String(), required=True)


class GroupAttendanceData(EventData):
    """Who came of one class: `pupil_ids` (roster ids, never names) when the attendance
    was taken per pupil, None when only a head count was given."""

    label = fields.String(required=True)
    students_booked = Whole(required=True)
    students_attended = Whole(required=True)
    pupil_ids = fields.List(fields.String(), load_default=None, allow_none=True)


@event("booking.visit_attended", 1)
class VisitAttended(EventData):
    """Who came, per claim: recorded by the venue, or by the school for its own trip.

    `students_attended` is always the head count. Added fields (compatible): `district_id`,
    `form` (`count` or `pupils`), `groups` (per class, with `pupil_ids` for the `pupils`
    form, so monitoring can count distinct pupils), `recorded_by_role`.
    """

    claim_id = fields.String(required=True)
    school_id = fields.String(required=True)
    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    district = fields.String(required=True)
    term = fields.String(required=True)
    students_booked = Whole(required=True)
    students_attended = Whole(required=True)
    teachers_attended = Whole(required=True)
    no_show = fields.Boolean(required=True)
    district_id = fields.String(load_default=None, allow_none=True)
    form = fields.String(load_default="count", validate=validate.OneOf(("count", "pupils")))
    groups = fields.List(fields.Nested(GroupAttendanceData), load_default=None,
                         allow_none=True)
    recorded_by_role = fields.String(load_default=None, allow_none=True)


# -- tutor visits (请进来) --------------------------------------------------------------------
class TutorVisitData(EventData):
    visit_id = fields.String(required=True)
    tutor_id = fields.String(required=True)
    tutor_name = fields.String(required=True)
    tutor_level = fields.String(required=True)
    venue_id = fields.String(required=True)
    school_id = fields.String(required=True)
    district = fields.String(required=True)  # the school's district, by name
    # added: the school's district id, the finance org whose budget pays (None for a
    # school not yet linked by the migration: funding then keys on `district`)
    district_id = fields.String(load_default=None, allow_none=True)
    date = Day(required=True)  # the visit day, Asia/Shanghai
    term = fields.String(required=True)
    hours = fields.Float(required=True)
    students = Whole(required=True)
    subject = fields.String(allow_none=True)


@event("booking.tutor_visit_booked", 1)
class TutorVisitBooked(TutorVisitData):
    """A school booked a tutor into the school."""


@event("booking.tutor_visit_delivered", 1)
class TutorVisitDelivered(TutorVisitData):
    """The tutor's venue says the visit took place."""


@event("booking.tutor_visit_confirmed", 1)
class TutorVisitConfirmed(TutorVisitData):
    """The school confirmed the delivered visit: the subsidy is now due (funding accrues it)."""


@event("booking.tutor_visit_cancelled", 1)
class TutorVisitCancelled(TutorVisitData):
    """A visit was cancelled; if it had been confirmed, its subsidy accrual is reversed."""

    previous_status = fields.String(required=True)
    reason = fields.String(required=True)


# -- requests and views (RPC payloads, and the HTTP API's bodies) ------------------------
class Group(Strict):
    """One class: a class is never split across sessions or claims."""

    label = fields.String(required=True, validate=validate.Length(min=1, max=50))
    grade = Whole(required=True, validate=validate.Range(min=1, max=12))
    students = Whole(required=True, validate=validate.Range(min=1, max=200))
    teachers = Whole(required=True, validate=validate.Range(min=0, max=20))


def _unique_labels(groups: list[dict]) -> None:
    labels = [g["label"] for g in groups]
    if len(set(labels)) != len(labels):
        raise ValidationError("each class label may appear once")


class ClaimRequest(Strict):
    session_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    groups = fields.List(fields.Nested(Group), required=True,
                         validate=[validate.Length(min=1, max=30), _unique_labels])
    waitlist = fields.Boolean(load_default=True)  # false: rejected rather than waitlisted


class BatchRequest(Strict):
    groups = fields.List(fields.Nested(Group), required=True,
                         validate=[validate.Length(min=1, max=60), _unique_labels])
    session_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                              required=True, validate=validate.Length(min=1, max=20))
    mode = fields.String(required=True, validate=validate.OneOf(("all_or_nothing",
                                                                 "best_effort")))
    waitlist = fields.Boolean(load_default=False)

    @validates_schema
    def _distinct_sessions(self, data: dict, **kwargs: object) -> None:
        ids = data.get("session_ids") or []
        if len(set(ids)) != len(ids):
            raise ValidationError("each session may appear once", "session_ids")


class HistoryEntry(Strict):
    at = Instant(required=True)
    status = fields.String(required=True)
    actor = fields.String(required=True)
    reason = fields.String(allow_none=True)


class ClaimView(Strict):
    claim_id = fields.String(required=True)
    school_id = fields.String(required=True)
    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    groups = fields.List(fields.Nested(Group), required=True)
    seats = Whole(required=True)
    status = fields.String(required=True)
    reason = fields.String(allow_none=True)
    waitlist_position = Whole(allow_none=True)
    batch_id = fields.String(allow_none=True)
    split_from = fields.String(allow_none=True)
    trip = fields.Dict(required=True)
    attendance = fields.Dict(allow_none=True)
    created_at = Instant(required=True)
    updated_at = Instant(required=True)
    history = fields.List(fields.Nested(HistoryEntry))


class Assignment(Strict):
    label = fields.String(required=True)
    session_id = fields.String(allow_none=True)
    claim_id = fields.String(allow_none=True)
    status = fields.String(required=True)  # confirmed, waitlisted, unplaced, released
    reason = fields.String(allow_none=True)


class BatchView(Strict):
    batch_id = fields.String(required=True)
    school_id = fields.String(required=True)
    mode = fields.String(required=True)
    status = fields.String(required=True)  # placing, completed, failed
    reason = fields.String(allow_none=True)
    assignments = fields.List(fields.Nested(Assignment), required=True)
    created_at = Instant(required=True)


class CancelRequest(Strict):
    reason = fields.String(load_default="cancelled by the school",
                           validate=validate.Length(min=1, max=500))


class PupilsPresent(Strict):
    """Who of one class came, as roster pupil ids (`GET` of the class roster)."""

    label = fields.String(required=True, validate=validate.Length(min=1, max=50))
    pupil_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                            required=True, validate=validate.Length(max=200))

    @validates_schema
    def _distinct(self, data: dict, **kwargs: object) -> None:
        ids = data.get("pupil_ids") or []
        if len(set(ids)) != len(ids):
            raise ValidationError("each pupil may appear once", "pupil_ids")


class AttendanceRecord(Strict):
    """One claim's attendance: a head count (`students`) or who came (`groups`)."""

    claim_id = fields.String(required=True)
    students = Whole(validate=validate.Range(min=0, max=2000))
    groups = fields.List(fields.Nested(PupilsPresent),
                         validate=[validate.Length(min=1, max=30), _unique_labels])
    teachers = Whole(load_default=0, validate=validate.Range(min=0, max=200))

    @validates_schema
    def _one_form(self, data: dict, **kwargs: object) -> None:
        if ("students" in data) == ("groups" in data):
            raise ValidationError("give either a head count or groups of pupil ids",
                                  "students")


class AttendanceRequest(Strict):
    records = fields.List(fields.Nested(AttendanceRecord), required=True,
                          validate=validate.Length(min=1, max=500))


class ClaimQuery(Strict):
    status = fields.String(validate=validate.OneOf(CLAIM_STATUSES))
    session_id = fields.String()
    school_id = fields.String()
    limit = Whole(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()


class SchoolQuery(Strict):
    """`GET /v1/schools`: a district's schools (district and finance staff: their own)."""

    district_id = fields.String(validate=DISTRICT_ID)  # admins only; others get their own
    limit = Whole(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()


class TutorVisitRequest(Strict):
    tutor_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    date = Day(required=True)
    hours = fields.Float(required=True, validate=validate.Range(min=0.5, max=8))
    students = Whole(required=True, validate=validate.Range(min=1, max=2000))
    subject = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=100))


class TutorVisitView(Strict):
    visit_id = fields.String(required=True)
    tutor_id = fields.String(required=True)
    tutor_name = fields.String(required=True)
    tutor_level = fields.String(required=True)
    venue_id = fields.String(required=True)
    school_id = fields.String(required=True)
    date = Day(required=True)
    term = fields.String(required=True)
    hours = fields.Float(required=True)
    students = Whole(required=True)
    subject = fields.String(allow_none=True)
    district_id = fields.String(allow_none=True)  # the school's district
    district = fields.String(allow_none=True)  # its name
    venue_name = fields.String(allow_none=True)  # the tutor's venue as it is called now
    venue_district = fields.String(allow_none=True)
    venue_district_id = fields.String(allow_none=True)
    status = fields.String(required=True)  # booked, delivered, confirmed, cancelled
    created_at = Instant(required=True)
    updated_at = Instant(required=True)
    history = fields.List(fields.Nested(HistoryEntry))


class TutorVisitQuery(Strict):
    status = fields.String(validate=validate.OneOf(("booked", "delivered", "confirmed",
                                                    "cancelled")))
    limit = Whole(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String()


class AllocationExplanation(Strict):
    session_id = fields.String(required=True)
    seed = fields.String(required=True)
    reproduced = fields.Boolean(required=True)
    order = fields.List(fields.Dict(), required=True)


class AllocationItem(Strict):
    """One claim's line of a window allocation: its place, the facts that decided it, and
    what it got (`placed` and `waiting` are class labels)."""

    claim_id = fields.String(required=True)
    school_id = fields.String(required=True)
    rank = Whole(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(
        ("confirmed", "partial", "waitlisted")))
    placed = fields.List(fields.String(), required=True)
    waiting = fields.List(fields.String(), required=True)
    priority_school = fields.Boolean(required=True)
    confirmed_visits = Whole(required=True)
    no_shows = Whole(required=True)
    lottery = fields.String(required=True)  # sha256(seed:claim_id), hex
    reason = fields.String(required=True)


class AllocationView(Strict):
    """`GET /v1/sessions/{session_id}/allocation`: a school sees only its own items."""

    session_id = fields.String(required=True)
    state = fields.String(required=True)  # open (window not closed), placing, completed
    closes_at = Instant(allow_none=True)
    rules = fields.List(fields.String(), required=True)  # the order, first rule first
    seed = fields.String(allow_none=True)
    seats_left = Whole(allow_none=True)  # seats there were to allocate
    planned_at = Instant(allow_none=True)
    claims = Whole(required=True)  # how many claims were in the draw
    reproduced = fields.Boolean(allow_none=True)  # re-running from the seed gives this order
    items = fields.List(fields.Nested(AllocationItem), required=True)
