"""Tutors: registered by their venue, bookable while the vetting lasts."""

from __future__ import annotations

import pytest

from services.contracts.venues import TutorChange, TutorRegistration
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Forbidden, NotFound, ValidationFailed
from services.kit.outbox import pending
from services.venues.tests.conftest import staff

TUTOR = {"name": "李老师", "level": "senior", "subjects": ["astronomy", "robotics"],
         "certified_until": "2027-06-30"}


def register(repo, venue, **overrides):
    return repo.tutors.register(venue, load(TutorRegistration, {**TUTOR, **overrides}),
                                staff(venue["_id"]))


def test_a_tutor_is_announced_and_bookable_until_the_vetting_ends(repo, venue):
    tutor = register(repo, venue)
    assert tutor["bookable"] and tutor["certified_until"] == "2027-06-30"
    doc = repo.db.tutors.find_one({"_id": tutor["tutor_id"]})
    [(_, env)] = pending(doc)
    assert env["type"] == "venues.tutor_registered"
    assert env["data"]["certified_until"] == "2027-06-30"
    assert repo.tutors.get(tutor["tutor_id"], on="2027-06-30")["bookable"]
    assert not repo.tutors.get(tutor["tutor_id"], on="2027-07-01")["bookable"]
    with pytest.raises(ValidationFailed):
        repo.tutors.get(tutor["tutor_id"], on="soon")
    with pytest.raises(NotFound):
        repo.tutors.get("tut_missing")


def test_vetting_in_the_past_and_bad_fields_are_refused(repo, venue):
    for overrides, field in [({"certified_until": "2026-08-31"}, "certified_until"),
                             ({"level": "guru"}, "level"), ({"subjects": []}, "subjects"),
                             ({"name": ""}, "name")]:
        with pytest.raises(ValidationFailed) as caught:
            register(repo, venue, **overrides)
        assert field in caught.value.errors
    assert repo.db.tutors.count_documents({}) == 0


def test_an_expired_tutor_is_not_bookable_and_renewal_is_announced(repo, venue, now):
    tutor = register(repo, venue, certified_until="2026-09-01")
    assert repo.tutors.get(tutor["tutor_id"])["bookable"]  # the last day still counts
    now.set(now.value.replace(day=2))
    assert not repo.tutors.get(tutor["tutor_id"])["bookable"]
    renewed = repo.tutors.change(venue["_id"], tutor["tutor_id"],
                                 load(TutorChange, {"certified_until": "2028-01-31"}),
                                 staff(venue["_id"]))
    assert renewed["bookable"] and renewed["certified_until"] == "2028-01-31"
    doc = repo.db.tutors.find_one({"_id": tutor["tutor_id"]})
    assert [env["type"] for _, env in pending(doc)][-1] == "venues.tutor_updated"
    with pytest.raises(Forbidden):
        repo.tutors.change(venue["_id"], tutor["tutor_id"], {"level": "expert"},
                           staff("ven_other"))


def test_only_staff_and_schools_list_tutors_a_page_at_a_time(repo, venue):
    names = [f"辅导员{i}" for i in range(5)]
    for name in names:
        register(repo, venue, name=name)
    seen, cursor = [], None
    while True:
        page = repo.tutors.of_venue(venue["_id"], staff(venue["_id"]), limit=2, cursor=cursor)
        seen += [t["name"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == names  # the clock stands still: same time, id order
    school = Actor(sub="s", role="school", org="sch_1")
    assert len(repo.tutors.of_venue(venue["_id"], school)["items"]) == 5
    for actor in (staff("ven_other"), Actor(sub="f", role="finance", org="d")):
        with pytest.raises(Forbidden):
            repo.tutors.of_venue(venue["_id"], actor)
    with pytest.raises(Forbidden):
        repo.tutors.of_venue(venue["_id"], None)
    with pytest.raises(Forbidden):
        repo.tutors.register(venue, load(TutorRegistration, TUTOR), None)


def test_tutors_page_by_kit_pages_keys_and_refuse_a_foreign_cursor(repo, venue, now):
    from datetime import timedelta

    from services.kit.pages import sort_key

    made = []
    for i in range(3):
        made.append(register(repo, venue, name=f"老师{i}"))
        now.set(now.value + timedelta(minutes=1))
    doc = repo.db.tutors.find_one({"_id": made[0]["tutor_id"]})
    assert doc["sort_key"] == sort_key(doc["created_at"], doc["_id"])
    first = repo.tutors.of_venue(venue["_id"], staff(venue["_id"]), limit=2)
    assert [t["name"] for t in first["items"]] == ["老师0", "老师1"]
    rest = repo.tutors.of_venue(venue["_id"], staff(venue["_id"]), limit=2,
                                cursor=first["next_cursor"])
    assert [t["name"] for t in rest["items"]] == ["老师2"] and rest["next_cursor"] is None
    with pytest.raises(ValidationFailed) as caught:
        repo.tutors.of_venue(venue["_id"], staff(venue["_id"]), cursor="bm9wZQ")
    assert "cursor" in caught.value.errors
