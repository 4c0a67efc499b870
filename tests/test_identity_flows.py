"""People sign in: invitations, sign-in, refresh, removal, throttling, API keys, the audit
trail and organisation boundaries, end to end through the gateway (issue #12)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support import Api, Client, password, problem, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def schools(api: Api) -> dict[str, Any]:
    """Two schools, and a manager of the first (invited by the admin, signed in)."""
    a, b = api.register_school(name="学校甲"), api.register_school(name="学校乙")
    return {"a": a["school_id"], "b": b["school_id"],
            "manager": api.person("school", a["school_id"], manager=True, name="manager")}


def accept(api: Api, link: str, secret_word: str | None = None, **extra: Any) -> dict:
    r = api.anonymous.post("/v1/invitations/accept",
                           json={"token": link, "password": secret_word or password(), **extra})
    assert r.status_code == 200, r.text
    return r.json()


def audit(reader: Client, **query: str) -> list[dict[str, Any]]:
    r = reader.get("/v1/audit", params={"limit": "200", **query})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def audited(reader: Client, what: str, **query: str) -> list[dict[str, Any]]:
    """Audit rows matching `query`, once at least one is there (the gateway flushes ~1 s)."""
    return wait_for(lambda: audit(reader, **query), message=f"an audit row for {what}")


def newcomer(api: Api, inviter: Client, org: str, role: str = "school"
             ) -> tuple[str, str, Client]:
    """(e-mail, password, signed-in client) of a person invited by `inviter` who accepted."""
    email = f"teacher-{uuid.uuid4().hex[:8]}@kepu.test"
    _, link = api.invite(inviter, role, org, email=email)
    secret_word = password()
    accept(api, link, secret_word, display_name="李老师")
    return email, secret_word, api.login(email, secret_word)


def test_invite_accept_sign_in_act_and_every_step_is_audited(api, schools):
    manager, school = schools["manager"], schools["a"]
    email = f"new-{uuid.uuid4().hex[:8]}@kepu.test"
    invitation_id, link = api.invite(manager, "school", school, email=email)
    weak = api.anonymous.post("/v1/invitations/accept",
                              json={"token": link, "password": "1234567890",
                                    "display_name": "李老师"})
    assert problem(weak, 422)["errors"].keys() == {"password"}
    secret_word = password()
    joined = accept(api, link, secret_word, display_name="李老师")
    assert joined["membership"]["org_id"] == school
    used = api.anonymous.post("/v1/invitations/accept",
                              json={"token": link, "password": secret_word})
    assert problem(used, 409)["code"] == "invitation-closed"

    teacher = api.login(email, secret_word)
    me = teacher.get("/v1/me").json()
    assert me["user_id"] == joined["user_id"]
    assert {k: me["acting"][k] for k in ("org_id", "role")} == {"org_id": school,
                                                                "role": "school"}
    assert me["acting"]["org_name"]  # the switcher shows names, not ids
    assert teacher.get(f"/v1/schools/{school}").status_code == 200
    listed = manager.get("/v1/invitations", params={"state": "accepted"}).json()["items"]
    assert invitation_id in {i["invitation_id"] for i in listed}

    sent = audited(manager, "the invitation", action="invitation_sent",
                   resource_id=invitation_id)
    assert sent[0]["user_id"] == manager.user_id and sent[0]["org_id"] == school
    audited(manager, "the acceptance", action="invitation_accepted", resource_id=invitation_id)
    audited(manager, "the sign-in", action="login", user_id=teacher.user_id)
    row = audited(manager, "the gateway's record of the invite", action="request",
                  resource_id=invitation_id)[0]
    assert (row["method"], row["route"], row["outcome"], row["user_id"], row["role"]) == (
        "POST", "/v1/invitations", 201, manager.user_id, "school")
    assert row["request_id"] and row["client_address"]
    csv_text = manager.get("/v1/audit.csv", params={"resource_id": invitation_id}).text
    assert csv_text.lstrip("\ufeff").startswith("at,action,outcome")


def test_refresh_rotates_and_a_reused_token_ends_the_sign_in(api, schools):
    email, secret_word, _ = newcomer(api, schools["manager"], schools["a"])
    first = api.anonymous.post("/v1/auth/login",
                               json={"identifier": email, "password": secret_word}).json()
    second = api.anonymous.post("/v1/auth/refresh",
                                json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = api.anonymous.post("/v1/auth/refresh",
                                json={"refresh_token": first["refresh_token"]})
    assert problem(reused, 401)["code"] == "refresh-reused"
    after = api.anonymous.post("/v1/auth/refresh",
                               json={"refresh_token": second.json()["refresh_token"]})
    assert problem(after, 401)["code"] == "refresh-revoked"  # the whole family ended
    audited(api.admin, "the reuse", action="refresh_reused", user_id=first["user_id"])


def test_a_removed_member_is_refused_at_once_and_cannot_refresh(api, schools):
    manager, school = schools["manager"], schools["a"]
    _, _, teacher = newcomer(api, manager, school)
    assert teacher.get(f"/v1/schools/{school}").status_code == 200
    membership = f"{teacher.user_id}|{school}|school"
    removed = manager.delete(f"/v1/members/{membership}")
    assert removed.status_code == 200, removed.text
    assert removed.json()["status"] == "removed"
    refused = api.anonymous.post("/v1/auth/refresh",
                                 json={"refresh_token": teacher.pair["refresh_token"]})
    assert problem(refused, 401)["code"] == "refresh-revoked"
    teacher.renew_at = float("inf")  # the test client must not try to refresh on its own
    wait_for(lambda: teacher.get(f"/v1/schools/{school}").status_code == 401, timeout=10,
             message="the gateway to refuse the removed member's access token")
    assert problem(teacher.get("/v1/me"), 401)["code"] == "token-revoked"
    audited(manager, "the removal", action="member_removed", resource_id=membership)


def test_repeated_wrong_passwords_are_throttled_with_retry_after(api, schools):
    email, _, _ = newcomer(api, schools["manager"], schools["a"])
    answers = []
    for _ in range(8):
        r = api.anonymous.post("/v1/auth/login", json={"identifier": email,
                                                       "password": "wrong-password-1"})
        answers.append(r.status_code)
        if r.status_code == 429:
            body = problem(r, 429)
            assert int(r.headers["Retry-After"]) >= 1 and body["retry_after"] >= 1
            break
    assert answers[0] == 401 and answers[-1] == 429, answers
    failed = audited(api.admin, "failed sign-ins", action="login_failed")
    assert any(row["outcome"] == 401 for row in failed)


def test_an_api_key_acts_for_its_organisation_until_revoked(api, schools):
    manager, school = schools["manager"], schools["a"]
    body = {"name": "教务系统", "role": "school", "org_id": school}
    created = manager.post("/v1/api-keys", json=body, headers={"Idempotency-Key": "key-1"})
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["api_key_id"]
    again = manager.post("/v1/api-keys", json=body, headers={"Idempotency-Key": "key-1"})
    assert again.json()["api_key_id"] == key_id and "key" not in again.json()
    integration = Client(api.url, key)
    assert integration.get(f"/v1/schools/{school}").status_code == 200
    problem(integration.get(f"/v1/schools/{schools['b']}"), 403)
    problem(integration.get("/v1/me"), 403)  # a key is not a person
    listed = manager.get("/v1/api-keys").json()["items"]
    assert [k["prefix"] for k in listed if k["api_key_id"] == key_id] == [key.split("_")[1]]
    assert all("key" not in k and "digest" not in k for k in listed)

    refused = integration.post("/v1/invitations", json={
        "email": "x@kepu.test", "role": "school", "org_id": school})
    problem(refused, 403)  # a key manages nobody
    row = wait_for(lambda: [r for r in audit(manager, action="request", org_id=school)
                            if r["api_key_id"] == key_id],
                   message="a request row naming the API key")[0]
    assert (row["route"], row["outcome"], row["user_id"]) == ("/v1/invitations", 403, None)
    revoked = manager.post(f"/v1/api-keys/{key_id}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    wait_for(lambda: integration.get(f"/v1/schools/{school}").status_code == 401,
             timeout=10, message="the gateway to refuse the revoked key")
    audited(manager, "the revocation", action="api_key_revoked", resource_id=key_id)


def test_a_member_of_one_school_cannot_act_for_another(api, schools):
    _, _, teacher = newcomer(api, schools["manager"], schools["a"])
    other = schools["b"]
    problem(teacher.get(f"/v1/schools/{other}"), 403)
    switched = teacher.post("/v1/auth/switch", json={"org_id": other, "role": "school"})
    assert problem(switched, 403)["code"] == "not-a-member"
    problem(teacher.post("/v1/invitations", json={"email": "y@kepu.test", "role": "school",
                                                  "org_id": schools["a"]}), 403)  # no manager
    problem(schools["manager"].post("/v1/invitations", json={
        "email": "z@kepu.test", "role": "school", "org_id": other}), 403)
    problem(schools["manager"].get("/v1/audit", params={"org_id": other}), 403)
    problem(teacher.get("/v1/audit"), 403)  # not a manager


def test_identity_routes_name_the_field_of_bad_input(api):
    bad = api.anonymous.post("/v1/auth/login", json={"identifier": "", "password": "x"})
    assert "identifier" in problem(bad, 422)["errors"]
    bad = api.admin.post("/v1/invitations", json={"email": "a@kepu.test", "role": "king"})
    assert "role" in problem(bad, 422)["errors"]
    bad = api.admin.post("/v1/districts", json={"name": "区", "code": "!"})
    assert "code" in problem(bad, 422)["errors"]
    bad = api.anonymous.post("/v1/auth/login", json={"identifier": "a@kepu.test",
                                                      "password": "p", "client": {}})
    assert "client" in problem(bad, 422)["errors"]  # the gateway says where a caller is


def test_the_openapi_document_describes_sign_in_and_its_schemes(api):
    spec = api.anonymous.get("/v1/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert {"bearer", "apiKey"} <= set(schemes) and schemes["bearer"]["description"]
    login = spec["paths"]["/v1/auth/login"]["post"]
    assert login["security"] == [] and "Retry-After" in login["description"]
    assert spec["paths"]["/v1/me"]["get"]["security"] == [{"bearer": []}, {"apiKey": []}]
