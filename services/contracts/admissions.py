"""Admissions: individual bookings of family (亲子) and teacher-training sessions.

Households book family sessions with a verified mainland mobile (no account); school
staff book training seats for themselves or colleagues; venues check tickets in and
record what was paid at the door. Money is integer fen. See docs/admissions.md.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import Day, EventData, Instant, Strict, Whole
from services.contracts.notifications import MainlandMobile
from services.contracts.registry import event

PAYMENT_METHODS = ("cash", "wechat_pay", "alipay", "card")
BOOKING_STATES = ("held", "confirmed", "waitlisted", "cancelled", "expired")
MESSAGE_KINDS = ("code", "ticket", "reminder", "promoted", "cancelled", "expired")
CODE = validate.Regexp(r"^[0-9]{6}$", error="must be the 6 digits sent by SMS")
MAX_PEOPLE = 20


class CodeRequest(Strict):
    """`POST /v1/family/codes`: send a one-time code to a mainland mobile."""

    mobile = MainlandMobile(required=True)


class CodeCheck(Strict):
    """`POST /v1/family/verifications`: the code back; answers a short-lived pass."""

    mobile = MainlandMobile(required=True)
    code = fields.String(required=True, validate=CODE)


class FamilyBookingRequest(Strict):
    """`POST /v1/family/sessions/{id}/bookings`: adults and children for one household."""

    verification = fields.String(required=True, validate=validate.Length(min=10, max=600))
    adults = Whole(required=True, validate=validate.Range(min=0, max=MAX_PEOPLE))
    children = Whole(required=True, validate=validate.Range(min=0, max=MAX_PEOPLE))
    child_names = fields.List(fields.String(validate=validate.Length(min=1, max=50)),
                              load_default=list, validate=validate.Length(max=MAX_PEOPLE))
    language = fields.String(load_default="zh-CN", validate=validate.OneOf(("zh-CN", "en")))

    @validates_schema
    def _someone(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("adults", 0) + data.get("children", 0) < 1:
            raise ValidationError("book at least one person", "adults")
        if data.get("children", 0) and not data.get("adults", 0):
            raise ValidationError("children come with at least one adult", "adults")
        if len(data.get("child_names") or []) > data.get("children", 0):
            raise ValidationError("more names than children", "child_names")


class Attendee(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=50))
    subject = fields.String(load_default=None, allow_none=True,
                            validate=validate.Length(max=50))
    mobile = MainlandMobile(load_default=None, allow_none=True)


class TrainingBookingRequest(Strict):
    """`POST /v1/training/sessions/{id}/bookings`: school staff book seats for named people."""

    attendees = fields.List(fields.Nested(Attendee), required=True,
                            validate=validate.Length(min=1, max=MAX_PEOPLE))


class CheckInRequest(Strict):
    """`POST /v1/venues/{id}/check-ins`: a scanned or typed ticket code, and how the fee
    was paid at the venue (required when there is a fee)."""

    code = fields.String(required=True, validate=validate.Length(min=4, max=200))
    method = fields.String(load_default=None, allow_none=True,
                           validate=validate.OneOf(PAYMENT_METHODS))


class TakingsQuery(Strict):
    """`GET /v1/venues/{id}/takings`: one day (Asia/Shanghai) as CSV, XLSX or JSON."""

    day = Day(required=True)
    format = fields.String(load_default="json", validate=validate.OneOf(("json", "csv", "xlsx")))


class RegisterQuery(Strict):
    limit = Whole(load_default=100, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(min=1, max=300))


class BookingView(Strict):
    """A booking as its guardian (manage link), the school or the venue sees it; the
    mobile is always masked."""

    booking_id = fields.String(required=True)
    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    audience = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(BOOKING_STATES))
    adults = Whole(required=True)
    children = Whole(required=True)
    people = Whole(required=True)
    child_names = fields.List(fields.String())
    attendee = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    school_id = fields.String(allow_none=True)
    school_name = fields.String(allow_none=True)
    mobile_masked = fields.String(allow_none=True)
    fee_fen = Whole(required=True)
    ticket_code = fields.String(allow_none=True)
    hold_expires_at = Instant(allow_none=True)
    waitlist_position = Whole(allow_none=True)
    checked_in_at = Instant(allow_none=True)
    paid = fields.Dict(allow_none=True)
    session = fields.Dict(allow_none=True)
    created_at = Instant(required=True)
    manage_token = fields.String(allow_none=True)  # only when the booking is made


@event("admissions.guardian_message", 1)
class GuardianMessage(EventData):
    """One SMS for notifications to deliver: a one-time code, a ticket, a reminder, a
    waitlist promotion, a cancellation. Carries the contact: only notifications consumes it."""

    kind = fields.String(required=True, validate=validate.OneOf(MESSAGE_KINDS))
    key = fields.String(required=True)  # dedup: the same message is stored once
    contact = fields.String(required=True)
    language = fields.String(required=True)
    code = fields.String(load_default=None, allow_none=True)
    booking_id = fields.String(load_default=None, allow_none=True)
    session_id = fields.String(load_default=None, allow_none=True)
    title = fields.String(load_default=None, allow_none=True)
    venue_name = fields.String(load_default=None, allow_none=True)
    starts_at = Instant(load_default=None, allow_none=True)
    ticket_code = fields.String(load_default=None, allow_none=True)
    link = fields.String(load_default=None, allow_none=True)
    expires_at = Instant(load_default=None, allow_none=True)


@event("admissions.contact_erased", 1)
class ContactErased(EventData):
    """A booking's mobile number was erased (days after its session): notifications forgets
    the recipient of the messages it sent about that booking."""

    booking_id = fields.String(required=True)
    session_id = fields.String(required=True)


class _BookingFact(EventData):
    booking_id = fields.String(required=True)
    session_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    district_id = fields.String(load_default=None, allow_none=True)
    audience = fields.String(required=True)
    school_id = fields.String(load_default=None, allow_none=True)
    adults = Whole(required=True)
    children = Whole(required=True)
    people = Whole(required=True)


@event("admissions.booking_confirmed", 1)
class BookingConfirmed(_BookingFact):
    """A family or training booking holds its seats and has a ticket (no contact in it)."""

    fee_fen = Whole(required=True)


@event("admissions.booking_cancelled", 1)
class BookingCancelled(_BookingFact):
    """A confirmed booking was cancelled (by its guardian or school, or with the session)."""

    reason = fields.String(required=True)


@event("admissions.checked_in", 1)
class CheckedIn(_BookingFact):
    """A ticket was checked in at the venue: attendance, and the fee paid at the door."""

    checked_in_at = Instant(required=True)
    fee_fen = Whole(required=True)
    method = fields.String(load_default=None, allow_none=True)
