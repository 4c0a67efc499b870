"""Names for the console: memberships carry their organisation's name; colleagues' display
names by id, and nobody else's."""

from __future__ import annotations

import pytest

from services.identity.people import user_ids
from services.identity.tests.conftest import ADMIN
from services.identity.tests.helpers import acting, login, member
from services.kit.actor import Actor
from services.kit.errors import ValidationFailed


def test_memberships_carry_their_organisations_name_and_kind(repo):
    repo.organisations.learn("school", "sch_a", "浦东新区实验小学", None)
    repo.organisations.learn("school", "sch_b", "临港第二小学", None)
    teacher = member(repo, "teacher@example.cn", org_id="sch_a")
    me = repo.sessions.me(acting(login(repo, "teacher@example.cn")))
    named = repo.organisations.named(me["memberships"] + [
        {"org_id": "sch_unknown", "org_kind": "school"}, {"org_id": None, "org_kind": None}])
    assert [(m["org_name"], m["org_kind"]) for m in named] == [
        ("浦东新区实验小学", "school"), (None, "school"), (None, "platform")]
    assert teacher["user_id"] == me["user_id"]


def test_people_names_only_members_of_the_callers_organisation(repo):
    a = member(repo, "a@example.cn", org_id="sch_a")
    b = member(repo, "b@example.cn", org_id="sch_a")
    other = member(repo, "c@example.cn", org_id="sch_b")
    asking = Actor(sub=a["user_id"], role="school", org="sch_a")
    ids = [b["user_id"], other["user_id"], "usr_nobody", a["user_id"]]
    names = repo.people.names(asking, ids)["items"]
    assert [p["user_id"] for p in names] == [b["user_id"], a["user_id"]]
    assert set(names[0]) == {"user_id", "display_name"}  # no contact, no status
    everyone = repo.people.names(ADMIN, ids)["items"]
    assert [p["user_id"] for p in everyone] == [b["user_id"], other["user_id"], a["user_id"]]


def test_ids_are_checked():
    assert user_ids("usr_a, usr_b,usr_a") == ["usr_a", "usr_b"]
    for bad in ("", ",", ",".join(f"u{i}" for i in range(101)), "u" * 65):
        with pytest.raises(ValidationFailed):
            user_ids(bad)
