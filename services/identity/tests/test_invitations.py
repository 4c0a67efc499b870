"""Invitations: invite, accept (new and existing people), resend, revoke, repair."""

from __future__ import annotations

import pytest

from services.identity import access
from services.identity.errors import Unauthenticated
from services.identity.tests.conftest import ADMIN, PASSWORD, SECRET
from services.identity.tests.helpers import (
    CLIENT,
    accept,
    invite,
    login,
    member,
    outbox_events,
    token_of,
)
from services.identity.tokens import digest
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed


def test_invite_accept_then_sign_in(repo):
    invitation, token = invite(repo, email="Wang.Li@School.example.cn", org_id="sch_a")
    assert invitation["state"] == "pending" and invitation["contact_masked"] == \
        "w***@school.example.cn"
    joined = accept(repo, token)
    assert joined["membership"]["role"] == "school" and joined["membership"]["org_id"] == "sch_a"

    pair = login(repo, "wang.li@school.example.cn")
    claims = access.read(SECRET, repo.policy, pair["access_token"])
    assert claims["sub"] == joined["user_id"] and claims["role"] == "school"
    assert claims["org"] == "sch_a" and claims["aud"] == "kepu-api" and claims["iss"] == "kepu"
    assert claims["jti"] and claims["exp"] - claims["iat"] <= 15 * 60
    assert pair["refresh_token"].startswith("rt_") and len(pair["refresh_token"]) > 40


def test_the_invitation_event_carries_what_delivery_needs_and_only_a_digest_is_stored(repo):
    invitation, token = invite(repo, mobile="138 1234 5678", org_id="sch_a", language="en")
    sent = outbox_events(repo.db.invitations, invitation["invitation_id"],
                         "identity.invitation_sent")[0]["data"]
    assert sent["channel"] == "sms" and sent["contact"] == "+8613812345678"
    assert sent["contact_masked"] == "+86 138****5678" and sent["language"] == "en"
    assert sent["link"].endswith(token) and sent["role"] == "school"
    stored = repo.db.invitations.find_one({"_id": invitation["invitation_id"]})
    assert stored["token_digest"] == digest(token)
    assert token.split(".", 1)[1] not in str({k: v for k, v in stored.items() if k != "outbox"})


def test_a_link_works_once(repo):
    _, token = invite(repo, email="a@example.cn")
    accept(repo, token)
    with pytest.raises(Conflict):
        accept(repo, token)


def test_a_forged_or_altered_link_is_refused(repo):
    _, token = invite(repo, email="a@example.cn")
    with pytest.raises(NotFound):
        accept(repo, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    with pytest.raises(NotFound):
        accept(repo, "inv_unknown.abcdefghijklmnop")


def test_a_link_expires_after_seven_days(repo, now):
    _, token = invite(repo, email="a@example.cn")
    now.move(7 * 24 * 3600 + 1)
    with pytest.raises(Conflict) as refused:
        accept(repo, token)
    assert refused.value.code == "invitation-expired"
    assert repo.invitations.list({"org_id": "sch_a", "state": "expired", "limit": 10,
                                  "cursor": None}, ADMIN)["items"][0]["state"] == "expired"


def test_resending_kills_the_old_link(repo):
    invitation, old = invite(repo, email="a@example.cn")
    repo.invitations.resend(invitation["invitation_id"], ADMIN)
    new = token_of(repo, invitation["invitation_id"])
    assert new != old
    with pytest.raises(NotFound):
        accept(repo, old)
    accept(repo, new)


def test_a_revoked_invitation_cannot_be_accepted(repo):
    invitation, token = invite(repo, email="a@example.cn")
    repo.invitations.revoke(invitation["invitation_id"], ADMIN)
    with pytest.raises(Conflict):
        accept(repo, token)
    assert outbox_events(repo.db.invitations, invitation["invitation_id"],
                         "identity.invitation_revoked")
    with pytest.raises(Conflict):
        repo.invitations.resend(invitation["invitation_id"], ADMIN)


def test_a_new_person_must_choose_a_strong_password_and_give_a_name(repo):
    _, token = invite(repo, email="zhangwei@example.cn")
    for weak in ("short", "1234567890", "woaini1314520", "zhangwei-2026-x"):
        with pytest.raises(ValidationFailed) as refused:
            accept(repo, token, weak)
        assert "password" in refused.value.errors
    with pytest.raises(ValidationFailed) as refused:
        accept(repo, token, name=None)
    assert "display_name" in refused.value.errors
    assert repo.db.users.count_documents({}) == 0  # nothing half-written
    accept(repo, token)


def test_someone_with_an_account_joins_another_org_with_their_own_password(repo):
    first = member(repo, "li@example.cn", org_id="sch_a")
    _, token = invite(repo, email="LI@example.cn", role="venue", org_id="ven_b")
    with pytest.raises(Unauthenticated):
        accept(repo, token, "a-different-password-9")
    joined = accept(repo, token, PASSWORD)
    assert joined["user_id"] == first["user_id"]
    assert {m["org_id"] for m in repo.memberships.of_user(first["user_id"])} == {"sch_a",
                                                                              "ven_b"}
    assert repo.db.users.count_documents({}) == 1


def test_managers_invite_into_their_own_org_only(repo):
    boss = member(repo, "boss@example.cn", org_id="sch_a", manager=True)
    teacher = member(repo, "teacher@example.cn", org_id="sch_a")
    as_boss = Actor(sub=boss["user_id"], role="school", org="sch_a")
    invite(repo, email="new@example.cn", actor=as_boss)
    with pytest.raises(Forbidden):
        invite(repo, email="other@example.cn", org_id="sch_b", actor=as_boss)
    with pytest.raises(Forbidden):
        invite(repo, email="root@example.cn", role="admin", org_id=None, actor=as_boss)
    with pytest.raises(Forbidden):
        invite(repo, email="x@example.cn",
               actor=Actor(sub=teacher["user_id"], role="school", org="sch_a"))
    with pytest.raises(Forbidden):  # sch_a is not known yet; the role still gives it away
        invite(repo, email="v@example.cn", role="venue", actor=as_boss)


def test_a_removed_manager_loses_the_power_to_invite_at_once(repo):
    boss = member(repo, "boss@example.cn", org_id="sch_a", manager=True)
    repo.members.remove(boss["membership"]["membership_id"], ADMIN)
    with pytest.raises(Forbidden):
        invite(repo, email="new@example.cn",
               actor=Actor(sub=boss["user_id"], role="school", org="sch_a"))


def test_duplicates_are_refused(repo):
    invite(repo, email="a@example.cn")
    with pytest.raises(Conflict) as refused:
        invite(repo, email="A@example.cn")
    assert refused.value.code == "invitation-pending"
    member(repo, "b@example.cn")
    with pytest.raises(Conflict) as refused:
        invite(repo, email="b@example.cn")
    assert refused.value.code == "already-member"


def test_district_roles_need_a_registered_district(repo, district):
    with pytest.raises(NotFound):
        invite(repo, email="a@example.cn", role="finance", org_id="dis_nowhere")
    invitation, _ = invite(repo, email="a@example.cn", role="finance",
                           org_id=district["district_id"])
    assert invitation["org_kind"] == "district"
    with pytest.raises(ValidationFailed):
        invite(repo, email="b@example.cn", role="school", org_id=district["district_id"])


def test_a_retried_invitation_is_one_invitation(repo):
    data = {"email": "a@example.cn", "mobile": None, "org_id": "sch_a", "role": "school",
            "manager": False, "language": "zh-CN", "display_name": None}
    first = repo.invitations.invite(data, ADMIN, "key-1")
    again = repo.invitations.invite(data, ADMIN, "key-1")
    assert first["invitation_id"] == again["invitation_id"]
    assert repo.db.invitations.count_documents({}) == 1


def test_repair_finishes_an_acceptance_interrupted_after_the_claim(repo, now):
    invitation, token = invite(repo, email="a@example.cn")
    real = repo.invitations._complete
    repo.invitations._complete = lambda doc: (_ for _ in ()).throw(RuntimeError("crash"))
    with pytest.raises(RuntimeError):
        accept(repo, token)
    repo.invitations._complete = real
    assert repo.db.users.count_documents({}) == 0
    assert repo.invitations.repair() == 0  # not stale yet: it may still be running
    now.move(120)
    assert repo.invitations.repair() == 1
    login(repo, "a@example.cn")
    stored = repo.db.invitations.find_one({"_id": invitation["invitation_id"]})
    assert stored["done"] and "password_hash" not in stored


def test_listing_is_for_the_org_managers(repo):
    invite(repo, email="a@example.cn", org_id="sch_a")
    invite(repo, email="b@example.cn", org_id="sch_b")
    listed = repo.invitations.list({"org_id": "sch_a", "state": None, "limit": 10,
                                    "cursor": None}, ADMIN)
    assert [i["contact_masked"] for i in listed["items"]] == ["a***@example.cn"]
    assert "contact" not in listed["items"][0] and "token_digest" not in listed["items"][0]
    with pytest.raises(Forbidden):
        repo.invitations.list({"org_id": "sch_a", "state": None, "limit": 10, "cursor": None},
                              Actor(sub="usr_x", role="school", org="sch_a"))


def test_accepting_is_audited(repo):
    joined = member(repo, "a@example.cn")
    actions = {r["action"] for r in repo.db.audit.find({"user_id": joined["user_id"]})}
    assert {"invitation_accepted", "member_added"} <= actions
    assert repo.db.audit.count_documents({"action": "invitation_sent"}) == 1
    assert CLIENT["address"] in {r["client_address"] for r in repo.db.audit.find()}
