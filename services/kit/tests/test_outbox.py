from __future__ import annotations

import pytest

import services.contracts  # noqa: F401 - registers the event types the tests emit
from services.kit.outbox import (
    add_events,
    event,
    mark_sent_update,
    pending,
    unrelayed,
    with_events,
)
from services.kit.registry import ContractViolation

SCHOOL = {"school_id": "sch_1", "name": "一小", "district": "浦东新区",
          "location": {"lat": 31.0, "lon": 121.0}, "rural": True, "under_resourced": False,
          "students": 100}


def test_event_is_checked_against_its_contract():
    env = event("booking.school_registered", SCHOOL)
    assert env["type"] == "booking.school_registered" and env["version"] == 1
    assert env["producer"] == "booking" and env["occurred_at"].endswith("Z")
    with pytest.raises(ContractViolation):
        event("booking.school_registered", {**SCHOOL, "students": "many"})
    with pytest.raises(ContractViolation):
        event("booking.no_such_event", {})


def test_insert_and_update_carry_events_in_the_same_write(db):
    first, second = event("booking.school_registered", SCHOOL), \
        event("booking.school_registered", SCHOOL)
    db.schools.insert_one(with_events({"_id": "sch_1", "name": "一小"}, first))
    db.schools.update_one({"_id": "sch_1"}, add_events({"$set": {"name": "二小"}}, second))
    doc = db.schools.find_one({"_id": "sch_1"})
    assert doc["name"] == "二小" and doc["outbox_pending"] == 2
    assert [env["event_id"] for _, env in pending(doc)] == [first["event_id"],
                                                             second["event_id"]]
    key = pending(doc)[0][0]
    assert db.schools.update_one({"_id": "sch_1"}, mark_sent_update([key])).modified_count == 1
    doc = db.schools.find_one({"_id": "sch_1"})
    assert doc["outbox_pending"] == 1 and len(pending(doc)) == 1


def test_unrelayed_sees_an_entry_pending_in_any_collection_of_the_prefix(db):
    assert not unrelayed(db.client, db.name)
    db.sessions.insert_one({"_id": "ses_1"})
    assert not unrelayed(db.client, db.name)
    db.schools.insert_one(with_events({"_id": "sch_1"},
                                      event("booking.school_registered", SCHOOL)))
    assert unrelayed(db.client, db.name)
    assert not unrelayed(db.client, db.name + "_other")
    keys = [key for key, _ in pending(db.schools.find_one({"_id": "sch_1"}))]
    db.schools.update_one({"_id": "sch_1"}, mark_sent_update(keys))
    assert not unrelayed(db.client, db.name)
