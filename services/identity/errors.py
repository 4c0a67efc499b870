"""Identity's refusals live in kit.errors (so nameko rebuilds them on the caller's side);
re-exported here for the domain modules that import them from identity."""

from __future__ import annotations

from services.kit.errors import TooManyRequests, Unauthenticated

__all__ = ["TooManyRequests", "Unauthenticated"]
