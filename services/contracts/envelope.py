"""The event envelope (DESIGN.md, 'Event envelope'); defined in `services.kit.envelope`."""

from services.kit.envelope import TYPE_PATTERN, EnvelopeSchema, new_envelope, routing

__all__ = ["TYPE_PATTERN", "EnvelopeSchema", "new_envelope", "routing"]
