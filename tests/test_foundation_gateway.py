"""The gateway's front: authentication, roles, parsing, size limits, idempotency, OpenAPI."""

from __future__ import annotations

import uuid

import jwt
import pymongo
import pytest

from tests.booking_helpers import School, Venue, group
from tests.support import Client, problem

pytestmark = pytest.mark.stack

SCHOOL = {"name": "测试小学", "district": "浦东新区", "location": {"lat": 31.2, "lon": 121.5},
          "students": 300}


def test_missing_token_is_401(api):
    body = problem(api.anonymous.post("/v1/schools", json=SCHOOL), 401)
    assert "token" in body["detail"]


def test_forged_token_is_401(api):
    forged = jwt.encode({"sub": "x", "role": "admin", "iss": "kepu", "iat": 1_700_000_000,
                         "exp": 4_000_000_000}, "not-the-secret-but-long-enough-for-hs256",
                        algorithm="HS256")
    problem(Client(api.url, forged).post("/v1/schools", json=SCHOOL), 401)


def test_expired_token_is_401(api):
    expired = jwt.encode({"sub": "x", "role": "admin", "iss": "kepu", "iat": 1_600_000_000,
                          "exp": 1_600_000_100}, api.secret, algorithm="HS256")
    problem(Client(api.url, expired).post("/v1/schools", json=SCHOOL), 401)


def test_wrong_role_is_403(api):
    school = api.as_("school", "sch_someone")
    problem(school.post("/v1/schools", json=SCHOOL), 403)
    problem(api.as_("venue", "ven_someone").post("/v1/venues", json={}), 403)


def test_malformed_json_is_400(api):
    response = api.admin.post("/v1/schools", data=b'{"name": ',
                              headers={"Content-Type": "application/json"})
    assert "JSON" in problem(response, 400)["title"]


def test_body_over_the_limit_is_413(api):
    big = b'{"name": "' + b"x" * (2 << 20) + b'"}'
    client = api.as_("admin")
    for _ in range(3):
        response = client.post("/v1/schools", data=big,
                               headers={"Content-Type": "application/json"})
        problem(response, 413)
        # the unread body spoils the connection: the gateway says so, and the client's next
        # request goes out on a fresh one instead of being lost
        assert response.headers["Connection"] == "close"
        problem(client.post("/v1/schools", json={}), 422)


def test_a_refused_upload_does_not_cost_the_next_request(api):
    """A 200 KiB body refused unread (wrong role) leaves the client a usable connection."""
    school = api.as_("school", "sch_someone")
    for _ in range(3):
        response = school.post("/v1/schools", data=b"[" + b"0," * (100 << 10) + b"0]",
                               headers={"Content-Type": "application/json"})
        problem(response, 403)
        assert response.headers["Connection"] == "close"
        problem(school.post("/v1/schools", json={}), 403)


def test_validation_names_each_field(api):
    body = problem(api.admin.post("/v1/schools", json={**SCHOOL, "students": 0,
                                                        "location": {"lat": 100, "lon": 0}}), 422)
    assert set(body["errors"]) == {"students", "location.lat"}


def test_unknown_route_and_method(api):
    problem(api.admin.get("/v1/nothing-here"), 404)
    problem(api.admin.request("DELETE", "/v1/schools"), 405)


def test_idempotency_key_repeats_the_first_answer(api):
    key = uuid.uuid4().hex
    admin = api.as_("admin", sub="idem-admin")
    first = admin.post("/v1/schools", json=SCHOOL, headers={"Idempotency-Key": key})
    again = admin.post("/v1/schools", json=SCHOOL, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = admin.post("/v1/schools", json={**SCHOOL, "students": 301},
                       headers={"Idempotency-Key": key})
    problem(other, 422)
    # another caller's key space is separate
    someone = api.as_("admin", sub="another-admin").post(
        "/v1/schools", json=SCHOOL, headers={"Idempotency-Key": key})
    assert someone.status_code == 201 and someone.json()["school_id"] != first.json()["school_id"]


def test_a_claims_key_is_bound_by_booking_alone(stack, api, mongo_url):
    """POST /v1/claims keeps no gateway record: booking answers the repeat (the same claim,
    201, Location) and refuses the key with another body as the gateway would."""
    session = Venue(api, name="幂等 venue").publish(capacity=100)
    school = School(api)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"session_id": session["session_id"], "groups": [group("一班")]}
    first = school.client.post("/v1/claims", json=body, headers=key)
    again = school.client.post("/v1/claims", json=body, headers=key)
    assert first.status_code == again.status_code == 201, again.text
    assert first.json()["claim_id"] == again.json()["claim_id"]
    assert first.headers["Location"] == again.headers["Location"]
    other = school.client.post("/v1/claims", json={**body, "groups": [group("二班")]},
                               headers=key)
    reused = problem(other, 422)
    assert reused["type"] == "/problems/idempotency-key-reused"
    assert reused["errors"] == {"Idempotency-Key": ["already used with a different request body"]}
    too_long = {"Idempotency-Key": "k" * 201}
    problem(school.client.post("/v1/claims", json=body, headers=too_long), 400)
    client = pymongo.MongoClient(mongo_url)
    try:
        assert client["kepu_gateway"].idempotency.count_documents(
            {"_id": {"$regex": key["Idempotency-Key"]}}) == 0
    finally:
        client.close()


def test_openapi_document_lists_the_routes(api):
    spec = api.anonymous.get("/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    post = spec["paths"]["/v1/schools"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]
    assert "SchoolRegistration" in spec["components"]["schemas"]


def test_healthz_reports_broker_database_and_services(api):
    body = api.anonymous.get("/healthz").json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["broker"] == "ok", body
    assert set(body["services"]) >= {"venues", "booking", "notifications", "funding"}


def test_request_id_is_echoed(api):
    response = api.anonymous.get("/healthz", headers={"X-Request-Id": "trace-12345678"})
    assert response.headers["X-Request-Id"] == "trace-12345678"


def test_livez_and_readyz(api):
    live = api.anonymous.get("/livez")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    ready = api.anonymous.get("/readyz").json()
    assert ready["status"] == "ok" and set(ready["services"]) >= {"venues", "booking"}


def test_deeply_nested_json_is_400(api):
    response = api.admin.post("/v1/schools", data=b"[" * 50_000 + b"]" * 50_000,
                              headers={"Content-Type": "application/json"})
    assert "nested too deeply" in problem(response, 400)["detail"]
