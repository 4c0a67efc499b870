"""Shapes several contracts share: locations, ids, the event-data base."""

from __future__ import annotations

import math
import unicodedata
from datetime import date, datetime
from functools import cache
from typing import Any
from zoneinfo import available_timezones

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

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


YEARS = (1970, 2200)  # nothing Kepu schedules, pays or reports falls outside these


class Whole(fields.Integer):
    """An integer that is one: `1.5` (or `true`, or `Infinity`) is refused, not truncated.

    marshmallow's Integer turns 1.5 into 1 unless strict, and strict refuses the "50" a
    query string carries; this takes whole numbers in either form and nothing else.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Day(fields.Date):
    """A calendar day (YYYY-MM-DD) within YEARS: year 271 is a typing slip, not a date."""

    default_error_messages = {"year": f"The year must be between {YEARS[0]} and {YEARS[1]}."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> date:
        day = super()._deserialize(value, attr, data, **kwargs)
        if not YEARS[0] <= day.year <= YEARS[1]:
            raise self.make_error("year")
        return day


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def time_zone(name: str) -> bool:
    """An IANA time zone name, e.g. Asia/Shanghai or Asia/Urumqi: checked against the list,
    never looked up as a file (a 100,000-character name was an OSError, a 500)."""
    if name not in _zones():
        raise ValidationError("not a known time zone, e.g. Asia/Shanghai")
    return True


def class_label_key(label: str) -> str:
    """A class label as compared, never as shown: `五年级（2）班`, `五年级(2)班` and
    `五年级 (2) 班` are one class. NFKC folds full-width punctuation, digits and letters
    to their ASCII forms; whitespace is dropped and letters case-folded."""
    return "".join(unicodedata.normalize("NFKC", label or "").casefold().split())


def printable(text: str) -> bool:
    """No control characters (NUL, line breaks, …) in a name people read and match on."""
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ValidationError("may not contain control characters")
    return True


NAME = validate.And(validate.Length(min=1, max=200), printable)
DISTRICT = validate.And(validate.Length(min=1, max=100), printable)


class Instant(fields.Field):
    """A point in time: any ISO-8601 time with an offset in, a UTC stamp string out.

    Loading keeps the stamp string (see `services.kit.clock`), the form Kepu stores and
    sends; a time without an offset is refused, since a school's 09:00 is ambiguous. So is
    a year outside YEARS: nothing Kepu schedules happens then, and such times broke
    stamping and parsing further on (a server error from input).
    """

    YEARS = YEARS
    default_error_messages = {
        "invalid": "Not a valid ISO-8601 time with a UTC offset.",
        "year": f"The year must be between {YEARS[0]} and {YEARS[1]}.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise self.make_error("invalid")
            when = value
        elif isinstance(value, str):
            try:
                when = clock.parse(value)
            except ValueError:
                raise self.make_error("invalid") from None
        else:
            raise self.make_error("invalid")
        low, high = self.YEARS
        if not low <= when.year <= high:
            raise self.make_error("year")
        return clock.stamp(when)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return clock.stamp(value)
        return str(value)
