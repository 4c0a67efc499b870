"""The console's only way into the platform: the public /v1 API over HTTP, as the person.

Every call carries the signed-in person's access token. A 401 is answered by spending the
refresh token once (`POST /v1/auth/refresh`) and retrying the call with the new access
token; the new pair is written back to the person's cookie by the app. A refusal from the
API arrives as an `ApiProblem` carrying the problem+json body, so pages can put each
field's error beside its field.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

TIMEOUT_S = 30


@dataclass
class Tokens:
    """The access and refresh tokens of one sign-in (held in the person's HttpOnly cookie)."""

    access: str | None = None
    refresh: str | None = None
    changed: bool = False


class ApiProblem(Exception):
    """The API refused: `status`, and the problem+json `body` (title, detail, errors)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body.get('detail') or body.get('title')}")
        self.status = status
        self.body = body

    @property
    def detail(self) -> str:
        return str(self.body.get("detail") or self.body.get("title") or self.status)

    @property
    def code(self) -> str | None:
        return self.body.get("code")

    def field_errors(self, prefix: str = "") -> dict[str, str]:
        """Each field's first message, with nested names flattened: `repeat.weekly.until`."""
        flat: dict[str, str] = {}

        def walk(path: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    walk(f"{path}.{key}" if path else str(key), inner)
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                flat.setdefault(path, value[0])
            elif isinstance(value, list):
                for index, inner in enumerate(value):
                    walk(f"{path}.{index}", inner)
            elif value is not None:
                flat.setdefault(path, str(value))

        walk(prefix, self.body.get("errors") or {})
        return flat


@dataclass
class Download:
    """A file the API answered (an export): bytes, content type and suggested name."""

    content: bytes
    content_type: str
    disposition: str | None = None


_local = threading.local()


def _session() -> requests.Session:
    """One keep-alive pool per worker thread (requests.Session is not thread-safe)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


@dataclass
class Api:
    """The /v1 API as one person: `api.get("/v1/claims", params=...)`."""

    base_url: str
    tokens: Tokens = field(default_factory=Tokens)
    client_address: str | None = None
    language: str = "zh-CN"
    on_signed_out: Callable[[], None] | None = None
    spent_s: float = 0.0  # time waiting on the API this request (Server-Timing)
    calls: int = 0

    def request(self, method: str, path: str, *, json: Any = None, params: Any = None,
                data: bytes | None = None, content_type: str | None = None,
                creates: bool = False, raw: bool = False, auth: bool = True) -> Any:
        headers = {"Accept": "application/json", "Accept-Language": self.language}
        if self.client_address:
            headers["X-Forwarded-For"] = self.client_address
        if creates:
            headers["Idempotency-Key"] = uuid.uuid4().hex  # one per submitted form
        if content_type:
            headers["Content-Type"] = content_type
        response = self._send(method, path, headers, json, params, data, auth)
        if response.status_code == 401 and auth and self.tokens.refresh and self._refresh():
            response = self._send(method, path, headers, json, params, data, auth)
        return self._answer(response, raw)

    def _send(self, method: str, path: str, headers: dict[str, str], json: Any, params: Any,
              data: bytes | None, auth: bool) -> requests.Response:
        sent = dict(headers)
        if auth and self.tokens.access:
            sent["Authorization"] = f"Bearer {self.tokens.access}"
        started = time.perf_counter()
        try:
            return _session().request(method, self.base_url + path, json=json, params=params,
                                      data=data, headers=sent, timeout=TIMEOUT_S)
        except requests.RequestException:
            raise ApiProblem(503, {"title": "Service unavailable", "status": 503,
                                   "detail": "the API did not answer"}) from None
        finally:
            self.spent_s += time.perf_counter() - started
            self.calls += 1

    def _refresh(self) -> bool:
        """Spend the refresh token once; False (and signed out) when it is refused."""
        response = _session().post(self.base_url + "/v1/auth/refresh",
                                   json={"refresh_token": self.tokens.refresh},
                                   headers={"Accept": "application/json"}, timeout=TIMEOUT_S)
        if response.status_code != 200:
            self.tokens.access = self.tokens.refresh = None
            self.tokens.changed = True
            if self.on_signed_out:
                self.on_signed_out()
            return False
        pair = response.json()
        self.tokens.access = pair["access_token"]
        self.tokens.refresh = pair["refresh_token"]
        self.tokens.changed = True
        return True

    @staticmethod
    def _answer(response: requests.Response, raw: bool) -> Any:
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = {"title": response.reason, "detail": response.text[:300]}
            if not isinstance(body, dict):
                body = {"detail": str(body)}
            raise ApiProblem(response.status_code, body)
        if raw:
            return Download(response.content, response.headers.get("Content-Type", ""),
                            response.headers.get("Content-Disposition"))
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)
