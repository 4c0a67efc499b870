"""The event registry mechanism: every event type with its version and payload schema.

A producer may only emit a registered (type, version); its data must load through the
schema. Consumers validate the same way, so a contract break shows at the first event.

The mechanism lives here; the event types live in `services.contracts`, whose modules
register themselves with `@event` and whose package import loads them all. kit never
imports `services.contracts` (the dependency points one way), so a process that checks
events must have imported `services.contracts` — every service does through its own
contracts module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, ValidationError

from services.kit.boundary import shared
from services.kit.envelope import EnvelopeSchema


class ContractViolation(Exception):
    """An event that does not match its registered contract."""


@dataclass(frozen=True)
class EventContract:
    type: str
    version: int
    schema: type[Schema]
    description: str = ""


EVENTS: dict[tuple[str, int], EventContract] = {}


def event(event_type: str, version: int = 1,
          description: str = "") -> Callable[[type[Schema]], type[Schema]]:
    """Class decorator registering a schema as the payload of (event_type, version)."""

    def register(schema: type[Schema]) -> type[Schema]:
        key = (event_type, version)
        if key in EVENTS and EVENTS[key].schema is not schema:
            raise ValueError(f"event {event_type} v{version} registered twice")
        doc = description or schema.__doc__ or ""
        EVENTS[key] = EventContract(event_type, version, schema, doc)
        return schema

    return register


def latest_version(event_type: str) -> int:
    versions = [v for (t, v) in EVENTS if t == event_type]
    if not versions:
        raise ContractViolation(f"unknown event type {event_type!r}")
    return max(versions)


def dump_data(event_type: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    """Serialise an event payload through its schema and check it loads back."""
    contract = EVENTS.get((event_type, version))
    if contract is None:
        raise ContractViolation(f"unknown event {event_type} v{version}")
    schema = shared(contract.schema)
    try:
        dumped = schema.dump(schema.load(schema.dump(data)))
    except ValidationError as exc:
        raise ContractViolation(f"{event_type} v{version}: {exc.messages}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise ContractViolation(f"{event_type} v{version}: {exc}") from None
    return dumped


def validate_envelope(envelope: Any) -> dict[str, Any]:
    """Check an envelope and its data; returns the envelope with data loaded as dumped JSON."""
    try:
        env = shared(EnvelopeSchema).load(envelope)
    except ValidationError as exc:
        raise ContractViolation(f"bad envelope: {exc.messages}") from None
    contract = EVENTS.get((env["type"], env["version"]))
    if contract is None:
        raise ContractViolation(f"unknown event {env['type']} v{env['version']}")
    try:
        shared(contract.schema).load(env["data"])
    except ValidationError as exc:
        raise ContractViolation(f"{env['type']} v{env['version']}: {exc.messages}") from None
    return env
