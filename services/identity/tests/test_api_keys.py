"""API keys: created once and shown once, verified, capped in role, expiring, revocable."""

from __future__ import annotations

import pytest

from services.identity.errors import Unauthenticated
from services.identity.tests.conftest import ADMIN
from services.identity.tests.helpers import member, outbox_events
from services.identity.tokens import digest
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Forbidden, NotFound, ValidationFailed


def request(**overrides):
    return {"name": "校务系统", "org_id": "sch_a", "role": "school", "expires_at": None,
            **overrides}


@pytest.fixture()
def boss(repo):
    joined = member(repo, "boss@example.cn", org_id="sch_a", manager=True)
    return Actor(sub=joined["user_id"], role="school", org="sch_a")


def test_create_shows_the_key_once_and_verify_knows_it(repo, boss):
    created = repo.api_keys.create(request(), boss)
    raw = created["key"]
    assert raw.startswith(f"kepu_{created['prefix']}_") and len(raw) >= 5 + 12 + 1 + 43
    stored = repo.db.api_keys.find_one({"_id": created["api_key_id"]})
    assert stored["digest"] == digest(raw) and raw not in str(stored)
    principal = repo.api_keys.verify(raw)
    assert principal == {"sub": created["api_key_id"], "role": "school", "org": "sch_a",
                         "api_key_id": created["api_key_id"], "prefix": created["prefix"]}
    listed = repo.api_keys.list(None, boss, 10, None)["items"]
    assert [k["prefix"] for k in listed] == [created["prefix"]] and "key" not in listed[0]
    assert listed[0]["last_used_at"] is not None


def test_a_wrong_or_malformed_key_is_refused(repo, boss):
    raw = repo.api_keys.create(request(), boss)["key"]
    for bad in (raw[:-1] + ("A" if raw[-1] != "A" else "B"), "kepu_x_y", "", "Bearer x",
                "kepu_000000000000_" + "a" * 43):
        with pytest.raises(Unauthenticated):
            repo.api_keys.verify(bad)


def test_a_key_role_never_exceeds_its_creators(repo, boss):
    for role in ("district", "finance", "venue"):
        with pytest.raises((Forbidden, ValidationFailed)):
            repo.api_keys.create(request(role=role), boss)
    with pytest.raises(Forbidden):
        repo.api_keys.create(request(org_id="sch_b"), boss)
    teacher = member(repo, "t@example.cn", org_id="sch_a")
    with pytest.raises(Forbidden):  # not a manager
        repo.api_keys.create(request(), Actor(sub=teacher["user_id"], role="school",
                                              org="sch_a"))
    assert repo.db.api_keys.count_documents({}) == 0


def test_an_admin_creates_keys_for_any_org_but_only_of_its_kind(repo, district):
    repo.api_keys.create(request(org_id="ven_b", role="venue"), ADMIN)
    repo.api_keys.create(request(org_id=district["district_id"], role="finance"), ADMIN)
    with pytest.raises(ValidationFailed) as refused:
        repo.api_keys.create(request(org_id=district["district_id"], role="school"), ADMIN)
    assert "org_id" in refused.value.errors


def test_a_key_expires(repo, boss, now):
    raw = repo.api_keys.create(request(expires_at=clock.later(3600)), boss)["key"]
    repo.api_keys.verify(raw)
    now.move(3601)
    with pytest.raises(Unauthenticated) as refused:
        repo.api_keys.verify(raw)
    assert refused.value.code == "api-key-expired"
    with pytest.raises(ValidationFailed) as past:
        repo.api_keys.create(request(expires_at=clock.later(-1)), boss)
    assert "expires_at" in past.value.errors


def test_a_revoked_key_stops_at_once(repo, boss):
    created = repo.api_keys.create(request(), boss)
    repo.api_keys.revoke(created["api_key_id"], boss)
    with pytest.raises(Unauthenticated) as refused:
        repo.api_keys.verify(created["key"])
    assert refused.value.code == "api-key-revoked"
    assert outbox_events(repo.db.api_keys, created["api_key_id"], "identity.api_key_revoked")
    with pytest.raises(NotFound):
        repo.api_keys.revoke(created["api_key_id"], Actor(sub="u", role="school", org="sch_b"))


def test_a_retried_create_makes_no_second_key_and_does_not_show_it_again(repo, boss):
    first = repo.api_keys.create(request(), boss, "key-1")
    again = repo.api_keys.create(request(), boss, "key-1")
    assert again["api_key_id"] == first["api_key_id"] and "key" not in again
    assert repo.db.api_keys.count_documents({}) == 1


def test_keys_outlive_their_creators_membership(repo, boss):
    raw = repo.api_keys.create(request(), boss)["key"]
    repo.members.remove(f"{boss.sub}|sch_a|school", ADMIN)
    assert repo.api_keys.verify(raw)["org"] == "sch_a"


def test_key_changes_are_audited(repo, boss):
    created = repo.api_keys.create(request(), boss)
    repo.api_keys.revoke(created["api_key_id"], boss)
    rows = list(repo.db.audit.find({"resource_id": created["api_key_id"]}))
    assert {r["action"] for r in rows} == {"api_key_created", "api_key_revoked"}
    assert all(r["user_id"] == boss.sub and r["org_id"] == "sch_a" for r in rows)
