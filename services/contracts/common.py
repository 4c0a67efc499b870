"""Shapes several contracts share: locations, ids, the event-data base."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from services.kit import clock


class EventData(Schema):
    """Base of every event payload: consumers ignore fields added by newer producers."""

    class Meta:
        unknown = EXCLUDE


class Strict(Schema):
    """Base of every request payload: an unknown field is an error the caller should see."""


class Location(Strict):
    lat = fields.Float(required=True, validate=validate.Range(min=-90, max=90))
    lon = fields.Float(required=True, validate=validate.Range(min=-180, max=180))


class LocationData(EventData):
    lat = fields.Float(required=True)
    lon = fields.Float(required=True)


NAME = validate.Length(min=1, max=200)
DISTRICT = validate.Length(min=1, max=100)


class Instant(fields.Field):
    """A point in time: any ISO-8601 time with an offset in, a UTC stamp string out.

    Loading keeps the stamp string (see `services.kit.clock`), the form Kepu stores and
    sends; a time without an offset is refused, since a school's 09:00 is ambiguous.
    """

    default_error_messages = {"invalid": "Not a valid ISO-8601 time with a UTC offset."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise self.make_error("invalid")
            return clock.stamp(value)
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return clock.stamp(clock.parse(value))
        except ValueError:
            raise self.make_error("invalid") from None

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return clock.stamp(value)
        return str(value)



