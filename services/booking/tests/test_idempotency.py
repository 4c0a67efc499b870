"""Idempotency-Keys bind per kind: a retry finds its first record, kinds never mix."""

from __future__ import annotations

from datetime import date

import pytest

from services.booking.schools import register_school
from services.booking.tests.conftest import ADMIN, group, make_school, school_actor
from services.kit.actor import Actor
from services.kit.errors import Forbidden, ValidationFailed

SCHOOL = {"name": "三林小学", "district": "浦东新区", "location": {"lat": 31.1, "lon": 121.5},
          "students": 600}


def add_tutor(venues, tutor_id="tut_1", venue_id="ven_1"):
    venues.tutors[tutor_id] = {"tutor_id": tutor_id, "name": "王老师", "level": "senior",
                               "venue_id": venue_id, "certified_until": "2099-12-31"}
    return tutor_id


def visit_body(tutor_id, students=40):
    return {"tutor_id": tutor_id, "date": date(2099, 3, 1).isoformat(), "hours": 2,
            "students": students}


def test_one_key_for_a_claim_then_a_batch_makes_one_of_each(desk, repo, venues):
    s1, s2 = venues.add_session(), venues.add_session()
    school = make_school(repo)
    actor = school_actor(school)
    made = desk.claims.create(actor, {"session_id": s1["session_id"],
                                      "groups": [group("一班")]}, "same-key")
    batch = desk.batches.create(actor, {"groups": [group("二班")], "session_ids": [
        s2["session_id"]], "mode": "best_effort"}, "same-key")
    assert made["_id"].startswith("clm_") and made["status"] == "confirmed"
    assert batch["_id"].startswith("bat_") and repo.find_batch(batch["_id"]) is not None
    assert repo.find_batch(made["_id"]) is None
    assert [c["session_id"] for c in repo.claims_of_batch(batch["_id"])] == [s2["session_id"]]


def test_a_retried_batch_answers_the_first(desk, repo, venues):
    session = venues.add_session()
    actor = school_actor(make_school(repo))
    body = {"groups": [group("一班")], "session_ids": [session["session_id"]],
            "mode": "best_effort"}
    first = desk.batches.create(actor, body, "b-1")
    again = desk.batches.create(actor, body, "b-1")
    assert first["_id"] == again["_id"] and repo.db.batches.count_documents({}) == 1


def test_a_retried_tutor_visit_is_the_same_visit(desk, repo, venues):
    actor = school_actor(make_school(repo))
    tutor = add_tutor(venues)
    first = desk.visits.book(actor, visit_body(tutor), "v-1")
    again = desk.visits.book(actor, visit_body(tutor), "v-1")
    assert first["_id"] == again["_id"] and repo.db.tutor_visits.count_documents({}) == 1
    other = desk.visits.book(actor, visit_body(tutor), "v-2")
    assert other["_id"] != first["_id"]


def test_a_key_reused_for_another_request_is_refused(desk, repo, venues):
    actor = school_actor(make_school(repo))
    tutor = add_tutor(venues)
    desk.visits.book(actor, visit_body(tutor), "v-1")
    with pytest.raises(ValidationFailed) as caught:
        desk.visits.book(actor, visit_body(tutor, students=41), "v-1")
    assert caught.value.code == "idempotency-key-reused"


def test_a_retried_school_registration_is_the_same_school(repo):
    first = register_school(repo, ADMIN, SCHOOL, "s-1")
    again = register_school(repo, ADMIN, SCHOOL, "s-1")
    assert first["school_id"] == again["school_id"]
    assert repo.db.schools.count_documents({}) == 1
    assert register_school(repo, ADMIN, SCHOOL)["school_id"] != first["school_id"]


def test_school_keys_are_per_admin_and_only_admins_register(repo):
    other = Actor(sub="t-admin-2", role="admin")
    first = register_school(repo, ADMIN, SCHOOL, "s-1")
    assert register_school(repo, other, SCHOOL, "s-1")["school_id"] != first["school_id"]
    with pytest.raises(Forbidden):
        register_school(repo, school_actor(first), SCHOOL, "s-2")
    assert repo.db.schools.count_documents({}) == 2


def test_request_keys_expire(repo):
    indexes = repo.db.request_keys.index_information().values()
    assert any(ix.get("expireAfterSeconds") == 0 and ix["key"][0][0] == "expires_at"
               for ix in indexes)
