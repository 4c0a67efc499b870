"""The service's entrypoints: signed actors required where they must be, public calls work.

Each entrypoint is called on a worker built by nameko's `worker_factory`, with the real
repository and the real verifier bound to a test key.
"""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory

from services.identity.errors import Unauthenticated
from services.identity.service import IdentityService
from services.identity.tests.conftest import ADMIN, PASSWORD
from services.identity.tests.helpers import outbox_events, token_of
from services.kit.actor import Actor, actor_key, sign, verify
from services.kit.errors import Forbidden, ValidationFailed

KEY = actor_key("unit-test-secret")
CLIENT = {"address": "203.0.113.7", "user_agent": "pytest"}


@pytest.fixture()
def service(repo):
    return worker_factory(IdentityService, store=repo, actors=lambda data: verify(data, KEY))


def signed(actor: Actor) -> dict:
    return sign(actor, KEY)


def test_calls_that_act_for_someone_refuse_an_unsigned_or_forged_actor(service, repo):
    forged = {**signed(Actor(sub="u", role="school", org="sch_a")), "role": "admin"}
    calls = [
        lambda a: service.invite({"email": "a@b.cn", "role": "school", "org_id": "sch_a"}, a),
        lambda a: service.list_invitations({}, a),
        lambda a: service.resend_invitation("inv_x", a),
        lambda a: service.revoke_invitation("inv_x", a),
        lambda a: service.list_members({}, a),
        lambda a: service.remove_member("usr_x|sch_a|school", a),
        lambda a: service.set_user_status("usr_x", "disabled", a),
        lambda a: service.register_district({"name": "x", "code": "310115"}, a),
        lambda a: service.create_api_key({"name": "k", "role": "school"}, a),
        lambda a: service.list_api_keys({}, a),
        lambda a: service.revoke_api_key("key_x", a),
        lambda a: service.audit({}, a),
        lambda a: service.export_audit({}, a),
        lambda a: service.switch({"org_id": "sch_a", "role": "school"}, a),
        lambda a: service.people("usr_x", a),
        lambda a: service.me(a),
    ]
    for actor in (None, ADMIN.as_dict(), forged):
        for call in calls:
            with pytest.raises(Forbidden):
                call(actor)
    assert repo.db.invitations.count_documents({}) == 0
    assert repo.db.organisations.count_documents({}) == 0


def test_the_whole_way_in_through_the_entrypoints(service, repo):
    admin = signed(ADMIN)
    district = service.register_district({"name": "浦东新区教育局", "code": "310115"}, admin,
                                         request_key="k1")
    invitation = service.invite({"email": "fin@example.cn", "role": "finance",
                                 "org_id": district["district_id"], "manager": True}, admin,
                                request_key="k2")
    token = token_of(repo, invitation["invitation_id"])
    service.accept_invitation({"token": token, "password": PASSWORD,
                               "display_name": "财务 刘", "client": CLIENT})
    pair = service.login({"identifier": "fin@example.cn", "password": PASSWORD,
                          "client": CLIENT})
    assert pair["token_type"] == "Bearer" and pair["role"] == "finance"
    again = service.refresh({"refresh_token": pair["refresh_token"], "client": CLIENT})
    me = service.me(signed(Actor(sub=again["user_id"], role="finance",
                                 org=district["district_id"])))
    assert me["display_name"] == "财务 刘"
    assert [(m["org_name"], m["org_kind"]) for m in me["memberships"]] == [
        ("浦东新区教育局", "district")]
    assert me["acting"]["org_name"] == "浦东新区教育局"
    as_finance = signed(Actor(sub=again["user_id"], role="finance",
                              org=district["district_id"]))
    key = service.create_api_key({"name": "财务系统", "role": "finance"}, as_finance)
    assert service.verify_api_key(key["key"])["org"] == district["district_id"]
    assert service.logout({"refresh_token": again["refresh_token"]}) == {"signed_out": True}
    with pytest.raises(Unauthenticated):
        service.refresh({"refresh_token": again["refresh_token"]})
    assert service.recent_cutoffs() == []
    assert service.list_districts()["items"][0]["code"] == "310115"


def test_public_calls_validate_their_payloads(service):
    with pytest.raises(ValidationFailed) as refused:
        service.login({"identifier": "a@b.cn"})
    assert "password" in refused.value.errors
    with pytest.raises(ValidationFailed):
        service.accept_invitation({"token": "short", "password": "x"})
    with pytest.raises(ValidationFailed):
        service.record_requests({"not": "a list"})
    with pytest.raises(ValidationFailed):
        service.list_districts(limit=0)
    with pytest.raises(ValidationFailed) as refused:
        service.set_user_status("usr_x", "banned", signed(ADMIN))
    assert "status" in refused.value.errors


def test_the_gateway_records_requests_and_the_admin_reads_and_exports_them(service, repo):
    entry = {"method": "GET", "route": "/v1/claims/{claim_id}", "resource_id": "clm_1",
             "status": 200, "user_id": "usr_1", "org_id": "sch_a", "role": "school",
             "request_id": "req-1", "client_address": "203.0.113.7"}
    assert service.record_requests([entry, entry]) == {"recorded": 2, "refused": 0}
    poisoned = service.record_requests([entry, {**entry, "status": "teapot"}])
    assert poisoned == {"recorded": 1, "refused": 1}  # one bad record holds back no other
    rows = service.audit({"action": "request"}, signed(ADMIN))["items"]
    assert len(rows) == 3 and rows[0]["route"] == "/v1/claims/{claim_id}"
    assert "/v1/claims/{claim_id}" in service.export_audit({}, signed(ADMIN))


def test_a_removed_member_is_cut_off_through_the_entrypoint(service, repo):
    admin = signed(ADMIN)
    invitation = service.invite({"email": "t@example.cn", "role": "school",
                                 "org_id": "sch_a"}, admin)
    joined = service.accept_invitation({"token": token_of(repo, invitation["invitation_id"]),
                                        "password": PASSWORD, "display_name": "T"})
    removed = service.remove_member(joined["membership"]["membership_id"], admin)
    cutoffs = service.recent_cutoffs()
    assert cutoffs == [{"user_id": joined["user_id"],
                        "not_before_epoch": removed["not_before"]}]
    assert outbox_events(repo.db.users, joined["user_id"], "identity.user_cutoff")


def test_schools_and_venues_are_learned_from_their_events(service, repo):
    service.register_district({"name": "浦东新区教育局", "code": "310115"}, signed(ADMIN))
    school = {"school_id": "sch_a", "name": "实验小学", "district": "310115",
              "location": {"lat": 31.2, "lon": 121.5}, "rural": False}
    service.on_school_registered.__wrapped__(service, {"data": school})
    venue = {"venue_id": "ven_b", "name": "上海科技馆", "district": "浦东新区教育局"}
    service.on_venue_registered.__wrapped__(service, {"data": venue})
    service.on_venue_updated.__wrapped__(service, {"data": {**venue, "name": "科技馆"}})
    assert repo.organisations.get("sch_a")["district_id"] is not None
    assert repo.organisations.get("ven_b")["name"] == "科技馆"
