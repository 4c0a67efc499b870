"""Venues: a venue's registration, record, query and change, and their events."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import (
    DISTRICT,
    NAME,
    EventData,
    Instant,
    Location,
    LocationData,
    Strict,
    Whole,
    time_zone,
)
from services.contracts.registry import event

VENUE_KINDS = (
    "science_museum", "planetarium", "zoo", "botanical_garden", "agricultural_park",
    "university", "research_institute", "youth_palace", "tech_park", "other",
)


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
