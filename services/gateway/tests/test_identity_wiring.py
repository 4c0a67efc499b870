"""The gateway's side of identity, without a broker: local token checks with cut-offs,
API keys cached and dropped, the audit buffer, and the secret-bearing answer the
idempotency store must never keep."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import Client

from services.gateway.audit_trail import AuditTrail
from services.gateway.principals import Cutoffs, KeyCache, Verifier
from services.gateway.revocations import apply
from services.gateway.routing import Call, Route
from services.kit import auth
from services.kit.errors import TooManyRequests, Unauthenticated

SECRET = "unit-test-secret-" + "y" * 32
KEY = "kepu_0123456789ab_" + "s" * 43


def make_key(call: Call):
    return call.rpc.identity.create_api_key(call.body, actor=call.actor,
                                            request_key=call.request_key)


def login(call: Call):
    return call.rpc.identity.login({**call.body, "client": call.client})


def whoami(call: Call):
    return {"sub": call.principal.sub, "org": call.principal.org}


ROUTES = [
    Route("POST", "/v1/api-keys", make_key, ("admin", "school"), status=201, creates=True,
          secret_response=True),
    Route("POST", "/v1/auth/login", login, None),
    Route("GET", "/v1/whoami", whoami, ("admin", "school")),
    Route("POST", "/v1/things/<thing_id>/touch", whoami, ("admin", "school")),
]


@pytest.fixture()
def app(gateway_with):
    return gateway_with(ROUTES, SECRET)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_cut_off_refuses_older_tokens_of_that_user_only(app):
    c = Client(app)
    old = auth.mint(SECRET, "school", "sch_1", "usr_1")
    other = auth.mint(SECRET, "school", "sch_1", "usr_2")
    assert c.get("/v1/whoami", headers=bearer(old)).status_code == 200
    claims_iat = auth.verify(SECRET, old).issued_at
    apply({"type": "identity.user_cutoff",
           "data": {"user_id": "usr_1", "not_before_epoch": claims_iat + 1}},
          app.verifier.cutoffs, app.verifier.keys)
    refused = c.get("/v1/whoami", headers=bearer(old))
    assert refused.status_code == 401 and refused.get_json()["code"] == "token-revoked"
    assert c.get("/v1/whoami", headers=bearer(other)).status_code == 200


def test_cutoffs_keep_the_latest_and_forget_what_no_token_outlives():
    now = [10_000.0]
    cutoffs = Cutoffs(now=lambda: now[0])
    cutoffs.add("u", 9_000)
    cutoffs.add("u", 8_000)  # an older one arriving late changes nothing
    assert cutoffs.refuses("u", 8_999) and not cutoffs.refuses("u", 9_000)
    now[0] = 9_000 + 16 * 60 + 61
    for i in range(1001):
        cutoffs.add(f"x{i}", int(now[0]))
    assert not cutoffs.refuses("u", 8_999) and len(cutoffs) == 1001


def test_an_api_key_is_asked_once_cached_and_dropped_on_revocation(app):
    asked = []

    def verify_key(raw):
        asked.append(raw)
        return {"sub": "key_1", "role": "school", "org": "sch_9", "api_key_id": "key_1",
                "prefix": "0123456789ab"}

    app.rpc.on("identity", "verify_api_key", verify_key)
    c = Client(app)
    for _ in range(3):
        assert c.get("/v1/whoami", headers=bearer(KEY)).get_json() == {"sub": "key_1",
                                                                        "org": "sch_9"}
    assert len(asked) == 1
    apply({"type": "identity.api_key_revoked", "data": {"api_key_id": "key_1"}},
          app.verifier.cutoffs, app.verifier.keys)

    def refuse(raw):
        raise Unauthenticated("this API key was revoked", code="api-key-revoked")

    app.rpc.on("identity", "verify_api_key", refuse)
    refused = c.get("/v1/whoami", headers=bearer(KEY))
    assert refused.status_code == 401 and refused.get_json()["code"] == "api-key-revoked"


def test_a_cached_key_expires_after_its_time():
    now = [0.0]
    keys = KeyCache(ttl_s=30, now=lambda: now[0])
    verifier = Verifier(SECRET, lambda raw: {"sub": "k", "role": "venue", "org": "ven_1",
                                             "api_key_id": "k"}, keys=keys)
    verifier(KEY)
    assert keys.get(next(iter(keys._keys))) is not None
    now[0] = 31.0
    assert keys.get(next(iter(keys._keys))) is None


def test_a_new_api_key_is_never_kept_in_the_idempotency_store(app):
    app.rpc.on("identity", "create_api_key",
               lambda body, actor, request_key: {"api_key_id": "key_2", "key": KEY})
    c = Client(app)
    headers = {**bearer(auth.mint(SECRET, "admin", sub="adm")), "Idempotency-Key": "k-1"}
    for _ in range(2):
        r = c.post("/v1/api-keys", json={"name": "x"}, headers=headers)
        assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    stored = list(app.keys.collection.find({}))
    assert KEY not in json.dumps(stored, default=str)
    assert app.rpc.count("identity", "create_api_key") == 2  # identity binds the key


def test_state_changing_requests_are_recorded_after_the_answer(app):
    c = Client(app)
    token = auth.mint(SECRET, "school", "sch_1", "usr_7")
    c.post("/v1/things/thg_1/touch", headers={**bearer(token), "X-Request-Id": "req-12345678",
                                               "X-Forwarded-For": "203.0.113.9"})
    c.get("/v1/whoami", headers=bearer(token))  # a read is not recorded
    c.post("/v1/things/thg_2/touch")  # refused: recorded with its 401
    rows = list(app.audit._buffer)
    assert [(r["route"], r["resource_id"], r["status"]) for r in rows] == [
        ("/v1/things/<thing_id>/touch", "thg_1", 200),
        ("/v1/things/<thing_id>/touch", "thg_2", 401)]
    first = rows[0]
    assert (first["user_id"], first["org_id"], first["role"], first["request_id"],
            first["client_address"]) == ("usr_7", "sch_1", "school", "req-12345678",
                                         "203.0.113.9")
    assert rows[1]["user_id"] is None and len({r["entry_id"] for r in rows}) == 2


def test_the_audit_buffer_keeps_a_failed_batch_and_sends_it_once_identity_answers():
    sent: list[list[dict]] = []
    up = [False]

    def send(batch):
        if not up[0]:
            raise ConnectionError("identity is away")
        sent.append(batch)

    trail = AuditTrail(send, max_buffer=3)
    for i in range(4):
        trail.record({"method": "POST", "route": "/v1/x", "status": 200, "resource_id": str(i)})
    assert trail.dropped == 1 and trail.pending() == 3  # bounded: the oldest went
    with pytest.raises(ConnectionError):
        trail.flush()
    assert trail.pending() == 3
    up[0] = True
    assert trail.flush() == 3 and trail.pending() == 0
    assert [r["resource_id"] for r in sent[0]] == ["1", "2", "3"]


def test_login_gets_the_client_address_and_a_throttle_answer_has_retry_after(app):
    seen = []

    def throttled(payload):
        seen.append(payload["client"])
        raise TooManyRequests("too many failed sign-ins", code="login-throttled",
                              retry_after=42)

    app.rpc.on("identity", "login", throttled)
    r = Client(app).post("/v1/auth/login", json={"identifier": "a@b.cn", "password": "p"},
                         headers={"X-Forwarded-For": "198.51.100.7", "User-Agent": "ua"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "42"
    assert r.get_json()["retry_after"] == 42
    assert seen == [{"address": "198.51.100.7", "user_agent": "ua"}]


def test_a_batch_identity_refuses_is_dropped_and_counted_not_retried_forever():
    from services.kit.errors import ValidationFailed

    def send(batch):
        raise ValidationFailed("entries: a list of at most 500", {"entries": ["too many"]})

    trail = AuditTrail(send)
    trail.record({"method": "POST", "route": "/v1/x", "status": 200})
    assert trail.flush() == 0 and trail.pending() == 0 and trail.dropped == 1
