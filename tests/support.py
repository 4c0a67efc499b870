"""Helpers for tests that talk to the running stack."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import requests

import services.contracts  # noqa: F401 - registers every event type tests build (kit.outbox)
from services.kit import auth


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
             message: str = "") -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message or condition}: "
                         f"{last!r}")


class Client:
    """requests, with a bearer token and the gateway's base URL.

    Like a browser, it drops pooled connections it has left idle for a while, well before the
    gateway's keep-alive runs out: a request sent on a connection the server is closing at that
    very moment is lost ("Remote end closed connection without response")."""

    IDLE_S = 20.0

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.session = requests.Session()
        self.last_used = time.monotonic()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        if time.monotonic() - self.last_used > self.IDLE_S:
            self.session.close()  # the pool is rebuilt on the next request
        try:
            return self.session.request(method, self.url + path, **kwargs)
        finally:
            self.last_used = time.monotonic()

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)


class Api:
    def __init__(self, url: str, secret: str) -> None:
        self.url = url
        self.secret = secret
        self.admin = self.as_("admin")
        self.anonymous = Client(url, None)

    def token(self, role: str, org: str | None = None, sub: str | None = None) -> str:
        return auth.mint(self.secret, role, org, sub or f"{role}-{uuid.uuid4().hex[:6]}")

    def as_(self, role: str, org: str | None = None, sub: str | None = None) -> Client:
        return Client(self.url, self.token(role, org, sub))

    # -- common set-up through the public API ------------------------------------------
    def register_venue(self, **overrides: Any) -> dict[str, Any]:
        body = {"name": "上海科技馆", "kind": "science_museum", "district": "浦东新区",
                "location": {"lat": 31.2196, "lon": 121.5447},
                "address": "上海市浦东新区世纪大道2000号", **overrides}
        response = self.admin.post("/v1/venues", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def register_school(self, **overrides: Any) -> dict[str, Any]:
        body = {"name": "浦东新区实验小学", "district": "浦东新区",
                "location": {"lat": 31.2304, "lon": 121.52}, "rural": False,
                "under_resourced": False, "students": 800, **overrides}
        response = self.admin.post("/v1/schools", json=body)
        assert response.status_code == 201, response.text
        return response.json()


def problem(response: requests.Response, status: int) -> dict[str, Any]:
    """Assert `response` is an application/problem+json with `status`; return its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/problem+json"), \
        response.headers["Content-Type"]
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body
