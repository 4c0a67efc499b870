"""Domain errors that cross the RPC boundary intact.

A service raises one of these for an expected refusal; nameko serialises it, and the
caller (the gateway, another service) gets the same class back, not a bare RemoteError,
so the gateway can answer with the right problem+json status and per-field errors.
"""

from __future__ import annotations

from typing import Any

from nameko.exceptions import deserialize_to_instance


class DomainError(Exception):
    """An expected refusal: the request was understood and answered with 'no'."""

    status = 400
    title = "Bad request"
    kind = "bad-request"

    def __init__(self, detail: str = "", errors: dict[str, Any] | None = None,
                 code: str | None = None) -> None:
        # args travel over RPC as JSON; nameko turns None into "None", so send "" instead
        super().__init__(detail, errors or {}, code or "")
        self.detail = detail
        self.errors = errors or {}
        self.code = code or None

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code or self.kind}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        if self.code:
            body["code"] = self.code
        return body


@deserialize_to_instance
class ValidationFailed(DomainError):
    status = 422
    title = "Validation failed"
    kind = "validation"


@deserialize_to_instance
class NotFound(DomainError):
    status = 404
    title = "Not found"
    kind = "not-found"


@deserialize_to_instance
class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
    kind = "forbidden"


@deserialize_to_instance
class Conflict(DomainError):
    status = 409
    title = "Conflict"
    kind = "conflict"


@deserialize_to_instance
class Unauthenticated(DomainError):
    """Credentials wrong, unknown, expired or spent: 401, with no hint which."""

    status = 401
    title = "Unauthenticated"
    kind = "unauthenticated"


@deserialize_to_instance
class TooManyRequests(DomainError):
    """A throttle said no; `retry_after` (whole seconds) becomes the `Retry-After` header.

    It rides in `args` too, so nameko rebuilds it intact on the caller's side."""

    status = 429
    title = "Too many requests"
    kind = "too-many-requests"

    def __init__(self, detail: str = "", errors: dict[str, Any] | None = None,
                 code: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail, errors, code)
        self.retry_after = max(1, int(retry_after))
        self.args = (*self.args, self.retry_after)
        self.headers = {"Retry-After": str(self.retry_after)}

    def problem(self) -> dict[str, Any]:
        return {**super().problem(), "retry_after": self.retry_after}


@deserialize_to_instance
class Unavailable(DomainError):
    status = 503
    title = "Service unavailable"
    kind = "unavailable"


def validation_error(field: str, message: str) -> ValidationFailed:
    """A one-field validation failure, the commonest refusal."""
    return ValidationFailed(f"{field}: {message}", {field: [message]})
