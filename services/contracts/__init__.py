"""What services know about each other: event types and versions, RPC payloads.

This package is the only code services share about one another. Importing it (or any of
its modules) registers every event type into `services.kit.registry`, the mechanism kit's
outbox and event handlers check against. Contracts depend on kit's leaf modules (clock,
boundary, errors, registry, envelope); kit never imports this package.
"""

from services.contracts import (  # noqa: F401
    admissions,
    booking,
    funding,
    identity,
    monitoring,
    notifications,
    venues,
)
