"""Signing in and staying signed in: refresh rotation, reuse, switch, removal, sign-out."""

from __future__ import annotations

import pytest

from services.identity import access
from services.identity.errors import Unauthenticated
from services.identity.tests.conftest import ADMIN, SECRET
from services.identity.tests.helpers import (
    CLIENT,
    accept,
    acting,
    invite,
    login,
    member,
    outbox_events,
)
from services.kit.actor import Actor
from services.kit.errors import Forbidden, NotFound, ValidationFailed


@pytest.fixture()
def teacher(repo):
    return member(repo, "teacher@example.cn", org_id="sch_a")


def test_refresh_rotates_the_token_in_its_family(repo, teacher):
    first = login(repo, "teacher@example.cn")
    second = repo.sessions.refresh(first["refresh_token"], CLIENT)
    third = repo.sessions.refresh(second["refresh_token"], CLIENT)
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3
    sid = {access.read(SECRET, repo.policy, p["access_token"])["sid"]
           for p in (first, second, third)}
    assert len(sid) == 1
    jti = {access.read(SECRET, repo.policy, p["access_token"])["jti"]
           for p in (first, second, third)}
    assert len(jti) == 3
    stored = list(repo.db.refresh_tokens.find())
    assert all(d["_id"] not in (first["refresh_token"], second["refresh_token"])
               for d in stored)  # only digests are kept


def test_a_reused_refresh_token_revokes_the_whole_family(repo, teacher):
    first = login(repo, "teacher@example.cn")
    second = repo.sessions.refresh(first["refresh_token"], CLIENT)
    other = login(repo, "teacher@example.cn")  # another device: a family of its own
    with pytest.raises(Unauthenticated) as reused:
        repo.sessions.refresh(first["refresh_token"], CLIENT)  # the thief, or the owner
    assert reused.value.code == "refresh-reused"
    with pytest.raises(Unauthenticated):
        repo.sessions.refresh(second["refresh_token"], CLIENT)  # the newest one died too
    repo.sessions.refresh(other["refresh_token"], CLIENT)
    assert repo.db.audit.count_documents({"action": "refresh_reused"}) == 1


def test_an_unknown_or_expired_refresh_token_is_refused(repo, teacher, now):
    pair = login(repo, "teacher@example.cn")
    with pytest.raises(Unauthenticated):
        repo.sessions.refresh("rt_" + "x" * 43, CLIENT)
    now.move(30 * 24 * 3600 + 1)
    with pytest.raises(Unauthenticated):
        repo.sessions.refresh(pair["refresh_token"], CLIENT)


def test_switch_to_an_org_the_person_does_not_belong_to_is_refused(repo, teacher):
    pair = login(repo, "teacher@example.cn")
    for org, role in (("sch_b", "school"), ("sch_a", "venue"), (None, "admin")):
        with pytest.raises(Forbidden) as refused:
            repo.sessions.switch(acting(pair), org, role, CLIENT)
        assert refused.value.code == "not-a-member"


def test_switch_to_another_membership_and_sign_in_there_next_time(repo, teacher):
    _, token = invite(repo, email="teacher@example.cn", role="venue", org_id="ven_b")
    accept(repo, token)
    pair = login(repo, "teacher@example.cn")
    assert (pair["org_id"], pair["role"]) == ("sch_a", "school")
    switched = repo.sessions.switch(acting(pair), "ven_b", "venue", CLIENT)
    claims = access.read(SECRET, repo.policy, switched["access_token"])
    assert (claims["org"], claims["role"]) == ("ven_b", "venue")
    assert login(repo, "teacher@example.cn")["org_id"] == "ven_b"


def test_a_removed_members_refresh_is_refused_at_once_and_their_tokens_cut_off(repo, now):
    both = member(repo, "both@example.cn", org_id="sch_a")
    _, token = invite(repo, email="both@example.cn", role="venue", org_id="ven_b")
    accept(repo, token)
    at_school = login(repo, "both@example.cn")
    at_venue = repo.sessions.switch(acting(at_school), "ven_b", "venue", CLIENT)
    old_iat = access.read(SECRET, repo.policy, at_school["access_token"])["iat"]

    removed = repo.members.remove(both["membership"]["membership_id"], ADMIN)
    with pytest.raises(Unauthenticated):
        repo.sessions.refresh(at_school["refresh_token"], CLIENT)
    assert removed["not_before"] > old_iat
    cutoff = outbox_events(repo.db.users, both["user_id"], "identity.user_cutoff")[-1]["data"]
    assert cutoff["not_before_epoch"] == removed["not_before"]
    assert cutoff["not_before"].endswith(".000000Z")
    gone = outbox_events(repo.db.memberships, both["membership"]["membership_id"],
                         "identity.member_removed")
    assert gone and gone[0]["data"]["user_id"] == both["user_id"]
    # the venue membership lives on: its refresh gives a token the cut-off lets through
    fresh = repo.sessions.refresh(at_venue["refresh_token"], CLIENT)
    assert access.read(SECRET, repo.policy, fresh["access_token"])["iat"] >= \
        removed["not_before"]
    assert repo.db.audit.count_documents({"action": "member_removed"}) == 1
    assert {c["user_id"] for c in repo.users.recent_cutoffs(0)} == {both["user_id"]}


def test_a_member_removed_from_their_only_org_cannot_sign_in(repo, teacher):
    repo.members.remove(teacher["membership"]["membership_id"], ADMIN)
    with pytest.raises(Forbidden) as refused:
        login(repo, "teacher@example.cn")
    assert refused.value.code == "no-membership"


def test_only_managers_remove_members_of_their_org(repo, teacher):
    other = Actor(sub="usr_x", role="school", org="sch_b")
    with pytest.raises(NotFound):
        repo.members.remove(teacher["membership"]["membership_id"], other)
    assert repo.memberships.active(teacher["user_id"], "sch_a", "school")


def test_sign_out_ends_this_sign_in_only(repo, teacher):
    here = login(repo, "teacher@example.cn")
    there = login(repo, "teacher@example.cn")
    repo.sessions.logout(here["refresh_token"], False, CLIENT)
    with pytest.raises(Unauthenticated):
        repo.sessions.refresh(here["refresh_token"], CLIENT)
    repo.sessions.refresh(there["refresh_token"], CLIENT)
    assert repo.sessions.logout("rt_unknown-token-xxxx", False, CLIENT) == {"signed_out": True}


def test_sign_out_everywhere_revokes_every_family_and_cuts_off(repo, teacher):
    here = login(repo, "teacher@example.cn")
    there = login(repo, "teacher@example.cn")
    repo.sessions.logout(here["refresh_token"], True, CLIENT)
    with pytest.raises(Unauthenticated):
        repo.sessions.refresh(there["refresh_token"], CLIENT)
    assert outbox_events(repo.db.users, teacher["user_id"], "identity.user_cutoff")
    assert repo.db.audit.count_documents({"action": "logout"}) == 1


def test_a_disabled_person_cannot_sign_in_or_refresh(repo, teacher):
    pair = login(repo, "teacher@example.cn")
    repo.members.set_status(teacher["user_id"], "disabled", ADMIN)
    with pytest.raises(Unauthenticated):
        login(repo, "teacher@example.cn")
    with pytest.raises(Unauthenticated):
        repo.sessions.refresh(pair["refresh_token"], CLIENT)
    with pytest.raises(Forbidden):
        repo.members.set_status(teacher["user_id"], "active", acting(pair))
    repo.members.set_status(teacher["user_id"], "active", ADMIN)
    login(repo, "teacher@example.cn")


def test_me_shows_the_person_their_memberships_and_where_they_act(repo, teacher):
    pair = login(repo, "teacher@example.cn")
    me = repo.sessions.me(acting(pair))
    assert me["email"] == "teacher@example.cn" and me["display_name"] == "王老师"
    assert me["acting"] == {"org_id": "sch_a", "role": "school"}
    assert [m["org_id"] for m in me["memberships"]] == ["sch_a"]
    assert "password_hash" not in me
    with pytest.raises(Forbidden):
        repo.sessions.me(Actor(sub="key_123", role="school", org="sch_a"))


def test_sign_in_by_mobile_in_any_spelling(repo):
    _, token = invite(repo, mobile="+86 139-0000-1234")
    accept(repo, token)
    assert login(repo, "13900001234")["role"] == "school"
    assert login(repo, "0086 139 0000 1234")["role"] == "school"


def test_a_malformed_identifier_names_the_field(repo):
    with pytest.raises(ValidationFailed) as refused:
        login(repo, "not an identifier")
    assert "identifier" in refused.value.errors


def test_sign_in_and_failures_are_audited(repo, teacher):
    login(repo, "teacher@example.cn")
    with pytest.raises(Unauthenticated):
        login(repo, "teacher@example.cn", "wrong-password-123")
    rows = {r["action"]: r for r in repo.db.audit.find({"user_id": teacher["user_id"]})}
    assert rows["login"]["outcome"] == 200 and rows["login"]["org_id"] == "sch_a"
    assert rows["login_failed"]["outcome"] == 401
    assert rows["login_failed"]["client_address"] == CLIENT["address"]


def test_an_invited_admin_signs_in_to_the_platform(repo):
    _, token = invite(repo, email="ops@example.cn", role="admin", org_id=None)
    accept(repo, token)
    pair = login(repo, "ops@example.cn")
    claims = access.read(SECRET, repo.policy, pair["access_token"])
    assert claims["role"] == "admin" and "org" not in claims and pair["org_id"] is None
    assert repo.members.list({"org_id": None, "limit": 10, "cursor": None},
                             ADMIN)["items"][0]["user"]["email"] == "o***@example.cn"
