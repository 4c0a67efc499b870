"""Routes whose service answers repeated Idempotency-Keys itself, the request fingerprint of
the others, and the per-request caches (verified tokens, signed actors)."""

from __future__ import annotations

import json
import uuid

import jwt
import pytest
from marshmallow import fields
from werkzeug.test import Client

from services.contracts.common import Strict
from services.gateway import routing
from services.gateway.idempotency import NOT_JSON, fingerprint
from services.gateway.principals import TokenCache, Verifier
from services.gateway.routing import REUSE_S, ActorSigner, Call, Route
from services.kit import auth
from services.kit.actor import actor_key, verify
from services.kit.actor import sign as real_sign
from services.kit.boundary import load
from services.kit.errors import Unauthenticated, ValidationFailed

SECRET = "unit-test-secret-" + "b" * 32
SCHOOL = "sch_0123456789abcdef"


class Order(Strict):
    name = fields.String(required=True)
    seats = fields.Integer(required=True)


def create(call: Call):
    made = call.rpc.orders.create(call.body, actor=call.actor, request_key=call.request_key)
    call.headers["Location"] = f"/v1/orders/{made['id']}"
    return made


ROUTES = [Route("POST", "/v1/orders", create, ("school",), body=Order, status=201,
                creates=True, binds_key=True, service_loads=True),
          Route("POST", "/v1/notes", create, ("school",), body=Order, status=201,
                creates=True)]


class BindingService:
    """A service that binds keys as booking does: a repeat answers the same record, the key
    with another body is refused as kit.request_keys refuses it."""

    def __init__(self) -> None:
        self.bound: dict[str, tuple[str, str]] = {}

    def create(self, body, actor, request_key):
        load(Order, body)
        print_ = json.dumps(body, sort_keys=True)
        if request_key in self.bound:
            made, earlier = self.bound[request_key]
            if earlier != print_:
                raise ValidationFailed(
                    "this Idempotency-Key was used with a different request",
                    {"Idempotency-Key": ["already used with a different request"]},
                    code="idempotency-key-reused")
            return {"id": made}
        made = f"ord_{uuid.uuid4().hex[:16]}"
        if request_key:
            self.bound[request_key] = (made, print_)
        return {"id": made}


@pytest.fixture()
def app(gateway_with):
    gateway = gateway_with(ROUTES, SECRET)
    gateway.rpc.on("orders", "create", BindingService().create)
    return gateway


def school(key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {auth.mint(SECRET, 'school', SCHOOL, 'u1')}"}
    return {**headers, "Idempotency-Key": key} if key is not None else headers


def records(app, mongo) -> int:
    return mongo[app.settings.database("gateway")].idempotency.count_documents({})


def test_a_bound_route_keeps_no_record_and_its_service_answers_the_repeat(app, mongo):
    c = Client(app)
    first = c.post("/v1/orders", json={"name": "a", "seats": 2}, headers=school("k1"))
    again = c.post("/v1/orders", json={"seats": 2, "name": "a"}, headers=school("k1"))
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert first.headers["Location"] == again.headers["Location"]
    assert "Idempotent-Replayed" not in again.headers  # the service answered, not a record
    assert app.rpc.count("orders", "create") == 2
    assert records(app, mongo) == 0


def test_a_bound_key_reused_with_another_body_is_the_gateways_own_422(app, mongo):
    c = Client(app)
    c.post("/v1/notes", json={"name": "a", "seats": 2}, headers=school("n1"))
    kept = c.post("/v1/notes", json={"name": "b", "seats": 2}, headers=school("n1"))
    c.post("/v1/orders", json={"name": "a", "seats": 2}, headers=school("o1"))
    bound = c.post("/v1/orders", json={"name": "b", "seats": 2}, headers=school("o1"))
    assert kept.status_code == bound.status_code == 422
    assert kept.headers["Content-Type"] == bound.headers["Content-Type"]
    strip = lambda r: {k: v for k, v in r.get_json().items() if k != "request_id"}  # noqa: E731
    assert strip(kept) == strip(bound)
    assert strip(bound)["type"] == "/problems/idempotency-key-reused"
    assert set(strip(bound)["errors"]) == {"Idempotency-Key"}


@pytest.mark.parametrize("key", ["", "   ", "k" * 201])
def test_a_bound_route_still_refuses_a_key_of_the_wrong_shape_without_the_service(app, key):
    response = Client(app).post("/v1/orders", json={"name": "a", "seats": 1},
                                headers=school(key))
    assert response.status_code == 400
    assert response.get_json()["type"] == "/problems/idempotency-key"
    assert app.rpc.calls == []


def test_a_route_its_service_loads_gets_the_same_field_errors(app):
    c = Client(app)
    bad = {"name": 5, "seats": "many", "extra": True}
    by_service = c.post("/v1/orders", json=bad, headers=school())
    by_gateway = c.post("/v1/notes", json=bad, headers=school())
    assert by_service.status_code == by_gateway.status_code == 422
    assert by_service.get_json()["errors"] == by_gateway.get_json()["errors"]
    assert app.rpc.count("orders", "create") == 1  # only the route the service loads
    lone = c.post("/v1/orders", data=b'{"name": "\\ud800", "seats": 1}',
                  content_type="application/json", headers=school())
    assert lone.status_code == 422 and "name" in lone.get_json()["errors"]
    assert app.rpc.count("orders", "create") == 1  # the JSON itself is still checked here


def test_the_fingerprint_counts_json_by_content_and_anything_else_by_bytes():
    a = fingerprint("POST", "/v1/x", b'{"a": 1, "b": [1, 2]}', {"a": 1, "b": [1, 2]})
    b = fingerprint("POST", "/v1/x", b'{"b":[1,2],"a":1}', {"b": [1, 2], "a": 1})
    assert a == b
    assert a != fingerprint("POST", "/v1/x", b'{"a": 2}', {"a": 2})
    assert a != fingerprint("POST", "/v1/y", b'{"a": 1, "b": [1, 2]}', {"a": 1, "b": [1, 2]})
    csv = fingerprint("POST", "/v1/x", b"a,b\n1,2\n", NOT_JSON)
    assert csv != fingerprint("POST", "/v1/x", b"a,b\n1,3\n", NOT_JSON)


def test_a_verified_token_is_cached_until_its_expiry_and_cut_offs_still_apply():
    clock = [1_000_000.0]
    verifier = Verifier(SECRET, lambda raw: {}, tokens=TokenCache(now=lambda: clock[0]))
    token = auth.mint(SECRET, "school", SCHOOL, "u1")
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    first = verifier(token)
    assert len(verifier.tokens) == 1 and verifier(token) == first
    verifier.cutoffs.add("u1", first.issued_at + 1)  # signed out everywhere
    with pytest.raises(Unauthenticated):
        verifier(token)
    clock[0] = exp  # from its expiry on, the cache no longer answers for it
    assert verifier.tokens.get(token) is None
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(Unauthenticated):
        verifier(forged)


def test_an_actor_signature_is_reused_briefly_and_always_verifies(monkeypatch):
    signed = []
    monkeypatch.setattr(routing, "sign", lambda *a: signed.append(a) or real_sign(*a))
    clock = [5_000.0]
    key = actor_key(SECRET)
    signer = ActorSigner(key, now=lambda: clock[0])
    who = auth.Principal(sub="u1", role="school", org=SCHOOL)
    first = signer(who)
    assert signer(who) == first and len(signed) == 1
    assert signer(auth.Principal(sub="u2", role="school", org=SCHOOL)) != first
    clock[0] += REUSE_S
    assert verify(signer(who), key).sub == "u1" and len(signed) == 3
