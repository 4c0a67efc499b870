"""A console with its /v1 API faked at the HTTP session: each test says what the API
answers, and can read what the console sent (method, path, body, token)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.console import api as api_module
from services.console.app import create_app

Answer = tuple[int, Any] | Callable[[dict[str, Any]], tuple[int, Any]]


@dataclass
class FakeResponse:
    status_code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content(self) -> bytes:
        return b"" if self.body is None else b"{}"

    @property
    def reason(self) -> str:
        return "fake"

    @property
    def text(self) -> str:
        return str(self.body)

    def json(self) -> Any:
        return self.body


@dataclass
class FakeApi:
    """Routes `(METHOD, /path)` → answers; records every call."""

    routes: dict[tuple[str, str], list[Answer]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes[(method, path)] = list(answers)

    def request(self, method: str, url: str, json: Any = None, params: Any = None,
                data: Any = None, headers: dict[str, str] | None = None,
                timeout: float = 0) -> FakeResponse:
        path = urlparse(url).path
        call = {"method": method, "path": path, "json": json, "params": params,
                "data": data, "headers": dict(headers or {})}
        self.calls.append(call)
        answers = self.routes.get((method, path))
        if not answers:
            return FakeResponse(404, {"title": "Not found", "status": 404,
                                      "detail": f"no fake for {method} {path}"})
        answer = answers[0] if len(answers) == 1 else answers.pop(0)
        status, body = answer(call) if callable(answer) else answer
        return FakeResponse(status, body)

    def post(self, url: str, **kwargs: Any) -> FakeResponse:
        return self.request("POST", url, **kwargs)

    def sent(self, method: str, path: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["method"] == method and c["path"] == path]


@pytest.fixture()
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    api = FakeApi()
    monkeypatch.setattr(api_module, "_session", lambda: api)
    return api


@pytest.fixture()
def app(fake: FakeApi) -> Flask:
    return create_app({"KEPU_API_URL": "http://api.test", "KEPU_JWT_SECRET": "unit-secret"})


@pytest.fixture()
def client(app: Flask) -> Iterator[FlaskClient]:
    with app.test_client() as test_client:
        yield test_client


def csrf_of(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:500]
    return found.group(1)


PAIR = {"access_token": "access-1", "refresh_token": "rt_one", "expires_in": 900,
        "user_id": "usr_1", "org_id": None, "role": "school"}


def sign_in_as(client: FlaskClient, fake: FakeApi, role: str, org: str | None) -> str:
    """Sign in through the login form; returns the CSRF token of the session."""
    fake.on("POST", "/v1/auth/login", (200, {**PAIR, "role": role, "org_id": org}))
    fake.on("GET", "/v1/me", (200, {"user_id": "usr_1", "display_name": "李老师",
                                     "acting": {"org_id": org, "role": role},
                                     "memberships": [{"org_id": org, "role": role}]}))
    fake.on("GET", f"/v1/schools/{org}", (200, {"school_id": org, "name": "实验小学",
                                               "location": {"lat": 31.2, "lon": 121.5}}))
    fake.on("GET", f"/v1/venues/{org}", (200, {"venue_id": org, "name": "科技馆",
                                              "timezone": "Asia/Shanghai"}))
    token = csrf_of(client)
    answer = client.post("/login", data={"identifier": "li@example.cn", "password": "pw",
                                         "csrf_token": token})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
    return token
