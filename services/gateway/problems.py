"""Errors as RFC 9457 `application/problem+json`."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from services.kit.errors import DomainError
from services.kit.logs import clip

PROBLEM_JSON = "application/problem+json"


class Problem(DomainError):
    """A gateway-level refusal with an explicit status (auth, parsing, size, idempotency)."""

    def __init__(self, status: int, title: str, detail: str = "",
                 errors: dict[str, Any] | None = None, kind: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, errors, kind or title.lower().replace(" ", "-"))
        self.status = status
        self.title = title
        self.headers = headers or {}


DETAIL_MAX = 500  # a detail that echoes input (an id from the path) never grows with it


def problem_response(error: DomainError, request_id: str | None = None) -> Response:
    body = error.problem()
    if isinstance(body.get("detail"), str):
        body["detail"] = clip(body["detail"], DETAIL_MAX)
    if request_id:
        body["request_id"] = request_id
    response = Response(json.dumps(body, ensure_ascii=False), status=error.status,
                        content_type=PROBLEM_JSON)
    for name, value in getattr(error, "headers", {}).items():
        response.headers[name] = value
    return response


def unauthorized(detail: str, kind: str | None = None) -> Problem:
    return Problem(401, "Unauthorized", detail, kind=kind or "unauthorized",
                   headers={"WWW-Authenticate": 'Bearer realm="kepu"'})


def forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, kind="forbidden")
