"""Refusals identity needs that kit.errors does not have yet (they belong there).

`Unauthenticated` (401): the credentials are wrong, unknown or spent; the gateway answers
401 with no hint which. `TooManyRequests` (429): the sign-in throttle; `retry_after` is
whole seconds, for the gateway's `Retry-After` header. Both cross the RPC boundary intact
(nameko rebuilds them from `args`), so `retry_after` rides in `args` too.
"""

from __future__ import annotations

from typing import Any

from nameko.exceptions import deserialize_to_instance

from services.kit.errors import DomainError


@deserialize_to_instance
class Unauthenticated(DomainError):
    status = 401
    title = "Unauthenticated"
    kind = "unauthenticated"


@deserialize_to_instance
class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"
    kind = "too-many-requests"

    def __init__(self, detail: str = "", errors: dict[str, Any] | None = None,
                 code: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, errors, code)
        self.retry_after = max(1, int(retry_after))
        self.args = (*self.args, self.retry_after)

    def problem(self) -> dict[str, Any]:
        return {**super().problem(), "retry_after": self.retry_after}
