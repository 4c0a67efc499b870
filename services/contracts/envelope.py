"""The event envelope (docs/architecture.md, "RPC and events"), from `services.kit.envelope`."""

from services.kit.envelope import TYPE_PATTERN, EnvelopeSchema, new_envelope, routing

__all__ = ["TYPE_PATTERN", "EnvelopeSchema", "new_envelope", "routing"]
