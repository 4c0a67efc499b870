"""Tutors (校外科技辅导员): registration, change, view, query and their events."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import (
    NAME,
    Day,
    EventData,
    Instant,
    Strict,
    Whole,
)
from services.contracts.registry import event
from services.contracts.venues.bounds import SANE_DATE, SHANGHAI
from services.kit import clock

TUTOR_LEVELS = ("junior", "intermediate", "senior", "expert")

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
