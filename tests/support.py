"""Helpers for tests that talk to the running stack."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pika
import requests

import services.contracts  # noqa: F401 - registers every event type tests build (kit.outbox)
from services.kit import auth, broker
from services.kit.actor import Actor, actor_key, sign
from services.kit.rpc_client import RpcClient


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
    very moment is lost ("Remote end closed connection without response").

    A client signed in as a person (`signed_in`) refreshes its access token shortly before it
    expires, as the console does, so a session-long client outlives the 15-minute tokens."""

    IDLE_S = 20.0
    REFRESH_EARLY_S = 60.0

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.session = requests.Session()
        self.last_used = time.monotonic()
        self.pair: dict[str, Any] | None = None
        self.renew_at = float("inf")
        # each client is a device of its own behind a trusted proxy (the stack trusts
        # loopback, KEPU_TRUSTED_PROXIES' default): the sign-in throttle counts failures per
        # device, as it would in production, not for the whole suite at 127.0.0.1
        self.session.headers["X-Forwarded-For"] = ".".join(
            ["10"] + [str(secrets.randbelow(256)) for _ in range(3)])
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def signed_in(cls, url: str, pair: dict[str, Any]) -> Client:
        client = cls(url, None)
        client.use(pair)
        return client

    def use(self, pair: dict[str, Any]) -> None:
        """Act with this token pair (from login, refresh or switch)."""
        self.pair = pair
        self.session.headers["Authorization"] = f"Bearer {pair['access_token']}"
        self.renew_at = time.monotonic() + pair["expires_in"] - self.REFRESH_EARLY_S

    @property
    def user_id(self) -> str | None:
        return self.pair["user_id"] if self.pair else None

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        if time.monotonic() - self.last_used > self.IDLE_S:
            self.session.close()  # the pool is rebuilt on the next request
        if self.pair and time.monotonic() > self.renew_at:
            self._renew()
        try:
            return self.session.request(method, self.url + path, **kwargs)
        finally:
            self.last_used = time.monotonic()

    def _renew(self) -> None:
        assert self.pair is not None
        r = requests.post(self.url + "/v1/auth/refresh", timeout=60,
                          json={"refresh_token": self.pair["refresh_token"]})
        if r.status_code == 200:
            self.use(r.json())
        else:
            self.renew_at = float("inf")  # signed out (removed?): let the request say 401

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


INBOX = "kepu.test.inbox"


class Inbox:
    """The links identity sends people (invitations, password resets), read off the identity
    events exchange as the notifications service would deliver them."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.seen: dict[str, list[dict[str, Any]]] = {}
        with self._channel() as channel:
            broker.declare_events_exchange(channel, "identity")
            channel.queue_declare(INBOX, durable=True)
            for key in ("invitation_sent", "password_reset_requested"):
                channel.queue_bind(INBOX, broker.events_exchange("identity"), routing_key=key)

    @contextlib.contextmanager
    def _channel(self) -> Iterator[Any]:
        connection = pika.BlockingConnection(broker.parameters(self.amqp_url))
        try:
            yield connection.channel()
        finally:
            connection.close()

    def _drain(self) -> None:
        with self._channel() as channel:
            while True:
                method, _props, body = channel.basic_get(INBOX, auto_ack=True)
                if method is None:
                    return
                data = json.loads(body)["data"]
                key = data.get("invitation_id") or data.get("user_id")
                self.seen.setdefault(key, []).append(data)

    def message(self, key: str, count: int = 1) -> dict[str, Any]:
        """The `count`-th message for an invitation id (or a user id, for resets)."""
        def arrived() -> dict[str, Any] | None:
            self._drain()
            got = self.seen.get(key, [])
            return got[count - 1] if len(got) >= count else None
        return wait_for(arrived, timeout=30, message=f"message {count} for {key}")

    def token(self, key: str, count: int = 1) -> str:
        """The secret in the link (`?token=…`)."""
        return self.message(key, count)["link"].split("token=", 1)[1]


def operator(secret: str) -> dict[str, Any]:
    """A signed system admin actor, as `kepu` signs it, for operator RPC in tests."""
    return sign(Actor.system("tests"), actor_key(secret))


def password() -> str:
    return f"Kp-{secrets.token_urlsafe(12)}"


class Api:
    """HTTP clients for the running gateway.

    `admin` and every `as_(role, org)` are real people: the admin is bootstrapped once per
    session as `kepu user create-admin` does, and each other person is invited by that
    admin, accepts with a generated password and signs in, once per (role, org, name) per
    session. `minted(...)` is an operator's token (`kepu token`), for tests that stand for an
    operator or for a caller identity cannot know (a district that was never registered).
    """

    def __init__(self, url: str, secret: str, amqp_url: str | None = None) -> None:
        self.url = url
        self.secret = secret
        self.anonymous = Client(url, None)
        self.inbox = Inbox(amqp_url) if amqp_url else None
        self.people: dict[tuple[str, str | None, str | None], Client] = {}
        self.logins: dict[str, dict[str, str]] = {}
        self.admin = self._bootstrap_admin(amqp_url) if amqp_url else self.minted("admin")

    def token(self, role: str, org: str | None = None, sub: str | None = None) -> str:
        return auth.mint(self.secret, role, org, sub or f"{role}-{uuid.uuid4().hex[:6]}")

    def minted(self, role: str, org: str | None = None, sub: str | None = None) -> Client:
        return Client(self.url, self.token(role, org, sub))

    def _bootstrap_admin(self, amqp_url: str) -> Client:
        identifier, secret_word = f"admin-{uuid.uuid4().hex[:8]}@kepu.test", password()
        rpc = RpcClient(amqp_url, timeout=30)
        try:
            rpc.call("identity", "provision", {
                "identifier": identifier, "password": secret_word, "display_name": "测试管理员",
                "role": "admin", "manager": True}, actor=operator(self.secret))
        finally:
            rpc.close()
        self.logins["admin"] = {"identifier": identifier, "password": secret_word}
        return self.login(identifier, secret_word)

    def login(self, identifier: str, secret_word: str) -> Client:
        r = Client(self.url, None).post("/v1/auth/login",
                                json={"identifier": identifier, "password": secret_word})
        assert r.status_code == 200, r.text
        return Client.signed_in(self.url, r.json())

    def invite(self, inviter: Client, role: str, org: str | None, manager: bool = False,
               email: str | None = None) -> tuple[str, str]:
        """(invitation id, the link's token) of a new invitation."""
        email = email or f"{role}-{uuid.uuid4().hex[:10]}@kepu.test"
        r = inviter.post("/v1/invitations", json={
            "email": email, "role": role, "org_id": org, "manager": manager,
            "display_name": f"{role} {org or ''}".strip()})
        assert r.status_code == 201, r.text
        assert self.inbox is not None
        invitation_id = r.json()["invitation_id"]
        return invitation_id, self.inbox.token(invitation_id)

    def person(self, role: str, org: str | None = None, manager: bool = True,
               name: str | None = None) -> Client:
        """A new person in `org` with `role`, invited by the admin, signed in."""
        email = f"{name or role}-{uuid.uuid4().hex[:10]}@kepu.test".lower()
        _, link = self.invite(self.admin, role, org, manager, email)
        secret_word = password()
        r = self.anonymous.post("/v1/invitations/accept", json={"token": link,
                                                                "password": secret_word})
        assert r.status_code == 200, r.text
        self.logins[email] = {"identifier": email, "password": secret_word}
        client = self.login(email, secret_word)
        assert (client.pair or {}).get("org_id") == org, client.pair
        return client

    def as_(self, role: str, org: str | None = None, sub: str | None = None) -> Client:
        """A person acting as `role` for `org` (one per role, org and `sub` per session).

        A district or finance caller needs a registered district (`dis_…`); for any other
        label, and for an org-less finance caller, the caller is an operator's token."""
        if role == "admin" and sub is None:
            return self.admin
        if self.inbox is None or (role in ("finance", "district")
                                  and not (org or "").startswith("dis_")):
            return self.minted(role, org, sub)
        key = (role, org, sub)
        if key not in self.people:
            self.people[key] = self.person(role, org, name=sub)
        return self.people[key]

    def register_district(self, **overrides: Any) -> dict[str, Any]:
        body = {"name": f"测试区-{uuid.uuid4().hex[:8]}",
                "code": f"T{uuid.uuid4().hex[:10]}", **overrides}
        response = self.admin.post("/v1/districts", json=body)
        assert response.status_code == 201, response.text
        return response.json()

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
