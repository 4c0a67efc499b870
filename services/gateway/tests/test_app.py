"""The gateway as a WSGI app, with werkzeug's test client and a fake RPC: no broker.

Idempotency records live on the test run's nx-27017 (the root conftest's `mongo_url`).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from marshmallow import fields
from werkzeug.test import Client

from services.contracts.common import Instant, Strict
from services.gateway.limits import MAX_DEPTH
from services.gateway.routing import Call, Route
from services.gateway.throttle import Rate, Throttle
from services.kit import auth
from services.kit import services as registry
from services.kit.actor import Actor, actor_key, verify
from services.kit.errors import Conflict, Forbidden, NotFound, Unavailable, ValidationFailed

SECRET = "unit-test-secret-" + "x" * 32
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJjbGFpbV9pZCI6ImNsbV8xIn0.c2lnbmF0dXJlLXNlY3JldA"


class Thing(Strict):
    name = fields.String(required=True)
    at = Instant(load_default=None)
    extra = fields.Raw(load_default=None)


def create(call: Call):
    return call.rpc.things.create(call.body, actor=call.actor, request_key=call.request_key)


def get(call: Call):
    return call.rpc.things.get(call.path["thing_id"], actor=call.actor)


def consent(call: Call):
    return call.rpc.notifications.consent_page(call.path["token"])


ROUTES = [
    Route("POST", "/v1/things", create, ("admin", "school"), body=Thing, status=201,
          creates=True, max_body=4096),
    Route("POST", "/v1/bulk", create, ("admin",), body=Thing, status=201),
    Route("GET", "/v1/things/<thing_id>", get, ("admin", "school")),
    Route("GET", "/v1/consents/<token>", consent, None),
]


@pytest.fixture()
def app(gateway_with):
    return gateway_with(ROUTES, SECRET)


def client(app):
    return Client(app)


def bearer(role="admin", org=None, sub="u1", secret=SECRET):
    if role in ("school", "venue") and org is None:
        org = "sch_0123456789abcdef"
    return {"Authorization": f"Bearer {auth.mint(secret, role, org, sub)}"}


def problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["type"].startswith("/problems/")
    return body


# -- auth -------------------------------------------------------------------------------------
def test_a_missing_forged_or_expired_token_is_401(app):
    c = client(app)
    problem(c.get("/v1/things/t1"), 401)
    problem(c.get("/v1/things/t1", headers=bearer(secret="another-secret-" + "y" * 32)), 401)
    expired = jwt.encode({"sub": "x", "role": "admin", "iss": "kepu", "aud": "kepu-api",
                          "jti": "j1", "iat": 1_600_000_000, "exp": 1_600_000_100},
                         SECRET, algorithm="HS256")
    body = problem(c.get("/v1/things/t1", headers={"Authorization": f"Bearer {expired}"}), 401)
    assert "expired" in body["detail"]
    assert app.rpc.calls == []


def test_a_role_the_route_does_not_allow_is_403(app):
    problem(client(app).get("/v1/things/t1", headers=bearer("finance")), 403)
    assert app.rpc.calls == []


def test_services_receive_a_signed_actor_and_the_request_key(app):
    app.rpc.on("things", "create", lambda body, actor, request_key: {
        "id": "t1", "actor": actor, "key": request_key})
    response = client(app).post("/v1/things", json={"name": "a"},
                                headers={**bearer("school", sub="u9"), "Idempotency-Key": "k1"})
    assert response.status_code == 201
    body = response.get_json()
    assert verify(body["actor"], actor_key(SECRET)) == Actor("u9", "school",
                                                             "sch_0123456789abcdef")
    assert body["key"] == "k1"


# -- problems ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("error", "status", "kind"), [
    (NotFound("no such thing"), 404, "not-found"),
    (Forbidden("not yours"), 403, "forbidden"),
    (Conflict("taken", code="seat-taken"), 409, "seat-taken"),
    (ValidationFailed("bad", {"name": ["too long"]}), 422, "validation"),
    (Unavailable("booking is down"), 503, "unavailable"),
])
def test_domain_errors_become_their_problem(app, error, status, kind):
    def fail(*args, **kwargs):
        raise error

    app.rpc.on("things", "get", fail)
    body = problem(client(app).get("/v1/things/t1", headers=bearer()), status)
    assert body["type"] == f"/problems/{kind}" and body["detail"] == error.detail
    assert body["request_id"]
    if error.errors:
        assert body["errors"] == error.errors


def test_an_unhandled_error_is_500_and_its_log_line_hides_the_token(app, caplog):
    def crash(token):
        raise RuntimeError("upstream answered nonsense")

    app.rpc.on("notifications", "consent_page", crash)
    with caplog.at_level(logging.ERROR, logger="kepu.gateway"):
        response = client(app).get(f"/v1/consents/{TOKEN}?lang=zh-CN&t={TOKEN}")
    assert problem(response, 500)["type"] == "/problems/internal"
    logged = [r.getMessage() for r in caplog.records if r.name == "kepu.gateway"]
    assert logged == ["unhandled error on GET /v1/consents/<token>"]
    assert TOKEN not in caplog.text


def test_an_unknown_path_is_404_and_echoes_it_clipped(app):
    body = problem(client(app).get("/v1/" + "z" * 5000), 404)
    assert len(body["detail"]) < 100


# -- parsing ----------------------------------------------------------------------------------
def test_malformed_json_is_400(app):
    response = client(app).post("/v1/things", data=b'{"name": ',
                                headers={**bearer(), "Content-Type": "application/json"})
    assert problem(response, 400)["type"] == "/problems/malformed-json"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deeply_nested_json_is_400_not_a_server_error(app, depth):
    raw = b'{"name": "a", "extra": ' + b"[" * depth + b"]" * depth + b"}"
    response = client(app).post("/v1/bulk", data=raw,
                                headers={**bearer(), "Content-Type": "application/json"})
    body = problem(response, 400)
    assert "nested too deeply" in body["detail"]
    assert app.rpc.calls == []


def test_nesting_within_the_limit_is_accepted(app):
    app.rpc.on("things", "create", lambda body, **_: {"id": "t1"})
    nested = json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    response = client(app).post("/v1/things", json={"name": "a", "extra": nested},
                                headers=bearer())
    assert response.status_code == 201


@pytest.mark.parametrize("at", ["0500-06-05T10:00:00Z", "9999-12-31T23:00:00-05:00",
                                "0001-01-01T00:00:00+08:00", "1969-12-31T23:59:59Z"])
def test_a_time_out_of_range_is_a_field_error(app, at):
    response = client(app).post("/v1/things", json={"name": "a", "at": at}, headers=bearer())
    assert set(problem(response, 422)["errors"]) == {"at"}


def test_a_body_over_the_route_limit_is_413(app):
    response = client(app).post("/v1/things", json={"name": "x" * 5000}, headers=bearer())
    problem(response, 413)
    assert app.rpc.calls == []


# -- idempotency ------------------------------------------------------------------------------
def test_a_repeat_gets_the_first_answer(app):
    made = iter(range(1, 100))
    app.rpc.on("things", "create", lambda body, **_: {"id": f"t{next(made)}"})
    headers = {**bearer(), "Idempotency-Key": "same"}
    first = client(app).post("/v1/things", json={"name": "a"}, headers=headers)
    again = client(app).post("/v1/things", json={"name": "a"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json() == {"id": "t1"}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert app.rpc.count("things", "create") == 1
    other = client(app).post("/v1/things", json={"name": "b"}, headers=headers)
    assert problem(other, 422)["type"] == "/problems/idempotency-key-reused"


@pytest.mark.parametrize("failure", [Unavailable("booking timed out"), RuntimeError("lost")])
def test_an_upstream_failure_is_forgotten_so_the_client_may_retry(app, failure):
    outcomes = [failure, {"id": "t1"}]

    def answer(body, **_):
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    app.rpc.on("things", "create", answer)
    headers = {**bearer(), "Idempotency-Key": "retry-me"}
    first = client(app).post("/v1/things", json={"name": "a"}, headers=headers)
    assert first.status_code >= 500
    retry = client(app).post("/v1/things", json={"name": "a"}, headers=headers)
    assert retry.status_code == 201 and "Idempotent-Replayed" not in retry.headers
    assert app.rpc.count("things", "create") == 2


def test_idempotency_records_expire_by_a_ttl_index(app, mongo):
    app.rpc.on("things", "create", lambda body, **_: {"id": "t1"})
    client(app).post("/v1/things", json={"name": "a"},
                     headers={**bearer(), "Idempotency-Key": "ttl"})
    records = mongo[app.settings.database("gateway")].idempotency
    ttl = [i for i in records.list_indexes() if "expireAfterSeconds" in i]
    assert [(list(i["key"]), i["expireAfterSeconds"]) for i in ttl] == [(["expires_at"], 0)]
    doc = records.find_one({})
    left = doc["expires_at"] - datetime.now(UTC)
    assert timedelta(hours=47) < left <= timedelta(hours=48)


# -- rate limits and health -------------------------------------------------------------------
def test_a_client_over_its_limit_gets_429_with_retry_after(app):
    app.throttle = Throttle({"default": Rate(0.5, 2), "consent": Rate(0.1, 1),
                             "health": Rate(1, 1)})
    app.rpc.on("things", "get", lambda thing_id, actor: {"id": thing_id})
    c = client(app)
    for _ in range(2):
        assert c.get("/v1/things/t1", headers=bearer()).status_code == 200
    refused = c.get("/v1/things/t1", headers=bearer())
    assert problem(refused, 429)["type"] == "/problems/rate-limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # another address has its own bucket; consent links count apart from the API
    other = c.get("/v1/things/t1", headers=bearer(), environ_overrides={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200
    app.rpc.on("notifications", "consent_page", lambda token: {"ok": True})
    assert c.get(f"/v1/consents/{TOKEN}").status_code == 200
    problem(c.get(f"/v1/consents/{TOKEN}"), 429)
    assert app.rpc.count("notifications", "consent_page") == 1


def test_livez_answers_without_rpc_database_or_limits(app):
    app.throttle = Throttle({"default": Rate(0.001, 1), "health": Rate(0.001, 1)})
    app.mongo = None  # any use of the database would fail
    c = client(app)
    for _ in range(5):
        response = c.get("/livez")
        assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert app.rpc.calls == []


def test_readyz_fans_out_once_per_interval_and_healthz_is_its_alias(app):
    c = client(app)
    first = c.get("/readyz")
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok"
    assert set(body["services"]) == set(registry.names()) >= {"identity", "venues", "booking"}
    pings = len(app.rpc.calls)
    assert pings == len(registry.names())
    for path in ("/readyz", "/healthz", "/readyz"):
        assert c.get(path).get_json() == body
    assert len(app.rpc.calls) == pings  # answered from the shared result


def test_readyz_is_503_when_the_broker_is_down(app):
    app.rpc.broker_up = False
    body = client(app).get("/healthz")
    assert body.status_code == 503
    assert body.get_json()["status"] == "degraded" and body.get_json()["broker"] != "ok"


def test_a_service_detail_echoing_input_is_clipped(app):
    def refuse(thing_id, actor):
        raise NotFound(f"thing {thing_id} not found")

    app.rpc.on("things", "get", refuse)
    body = problem(client(app).get("/v1/things/" + "t" * 4000, headers=bearer()), 404)
    assert body["detail"].startswith("thing ttt") and len(body["detail"]) <= 501
