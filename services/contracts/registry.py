"""Where contracts modules register their events: the mechanism is `services.kit.registry`.

Kept as the contracts-side name so `from services.contracts.registry import event` reads
as before; importing the `services.contracts` package loads every event type.
"""

from services.kit.registry import (
    EVENTS,
    ContractViolation,
    EventContract,
    dump_data,
    event,
    latest_version,
    validate_envelope,
)

__all__ = ["EVENTS", "ContractViolation", "EventContract", "dump_data", "event",
           "latest_version", "validate_envelope"]
