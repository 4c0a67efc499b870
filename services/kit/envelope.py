"""The event envelope every Kepu event travels in (docs/architecture.md, "RPC and events").

It lives in kit, beside the registry mechanism, so the outbox, the relay and the event
handlers never import `services.contracts`: contracts depend on kit, never the reverse.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from services.kit import clock

TYPE_PATTERN = r"^[a-z]+\.[a-z_]+$"


class EnvelopeSchema(Schema):
    """`event_id`, `type`, `version`, `occurred_at`, `producer`, `data`.

    Unknown top-level fields are kept out, not refused: adding a field is a compatible
    change, so a consumer must accept envelopes from a newer producer.
    """

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=validate.Length(min=8, max=64))
    type = fields.String(required=True, validate=validate.Regexp(TYPE_PATTERN))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.String(required=True)
    producer = fields.String(required=True)
    correlation_id = fields.String(load_default=None, allow_none=True)
    data = fields.Dict(required=True)


def new_envelope(event_type: str, version: int, data: dict[str, Any],
                 correlation_id: str | None = None, event_id: str | None = None,
                 occurred_at: datetime | None = None) -> dict[str, Any]:
    """An envelope stamped by kit.clock (tests move it), in the stored stamp format."""
    producer = event_type.split(".", 1)[0]
    return {
        "event_id": event_id or uuid.uuid4().hex,
        "type": event_type,
        "version": version,
        "occurred_at": clock.stamp(occurred_at),
        "producer": producer,
        "correlation_id": correlation_id,
        "data": data,
    }


def routing(event_type: str) -> tuple[str, str]:
    """`venues.session_published` → ("venues", "session_published"): nameko's (source, type)."""
    producer, name = event_type.split(".", 1)
    return producer, name
