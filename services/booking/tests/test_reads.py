"""Who reads which claims, and the waitlist position claim views show."""

from __future__ import annotations

import pytest

from services.booking.claim_reads import can_read_claim, claim_filter
from services.booking.tests.conftest import group, make_school, school_actor
from services.kit.actor import Actor
from services.kit.errors import Forbidden, NotFound

ADMIN = Actor(sub="ops", role="admin")


def claim(desk, school, session, *groups):
    return desk.claims.create(school_actor(school), {
        "session_id": session["session_id"], "groups": list(groups)})


def test_waitlist_position_is_shown_in_get_and_list_and_moves_up(desk, repo, venues):
    session = venues.add_session(capacity=32)
    schools = [make_school(repo, f"{i}小") for i in range(4)]
    first = claim(desk, schools[0], session, group("一班"))
    waiting = [claim(desk, s, session, group("一班")) for s in schools[1:]]
    assert [w["status"] for w in waiting] == ["waitlisted"] * 3
    assert [desk.reads.get(school_actor(s), w["_id"])["waitlist_position"]
            for s, w in zip(schools[1:], waiting, strict=True)] == [1, 2, 3]
    listed, _ = desk.reads.list(ADMIN, {"session_id": session["session_id"], "limit": 10})
    assert {c["_id"]: c["waitlist_position"] for c in listed} == {
        first["_id"]: None, waiting[0]["_id"]: 1, waiting[1]["_id"]: 2, waiting[2]["_id"]: 3}
    desk.claims.cancel(school_actor(schools[0]), first["_id"])
    assert desk.reads.get(ADMIN, waiting[0]["_id"])["waitlist_position"] is None  # confirmed
    assert desk.reads.get(ADMIN, waiting[2]["_id"])["waitlist_position"] == 2


def test_the_waitlisted_event_tells_the_place_in_line(desk, repo, venues):
    session = venues.add_session(capacity=32)
    schools = [make_school(repo, f"{i}小") for i in range(3)]
    made = [claim(desk, s, session, group("一班")) for s in schools]
    staged = repo.db.claims.find_one({"_id": made[2]["_id"]})["outbox"]
    events = staged.values() if isinstance(staged, dict) else staged
    positions = [e["data"]["position"] for e in events
                 if e["type"] == "booking.claim_waitlisted"]
    assert positions == [2]


def test_claim_scoping_rules():
    claim_doc = {"school_id": "sch_a", "venue_id": "ven_a"}
    assert can_read_claim(Actor("u", "school", "sch_a"), claim_doc)
    assert not can_read_claim(Actor("u", "school", "sch_b"), claim_doc)
    assert can_read_claim(Actor("u", "venue", "ven_a"), claim_doc)
    assert not can_read_claim(Actor("u", "venue", "sch_a"), claim_doc)
    assert not can_read_claim(Actor("u", "finance", "浦东新区"), claim_doc)
    assert can_read_claim(ADMIN, claim_doc)
    asked = {"school_id": "sch_b", "status": "pending", "session_id": "ses_1"}
    assert claim_filter(Actor("u", "school", "sch_a"), asked) == {
        "school_id": "sch_a", "session_id": "ses_1",
        "status": {"$in": ["pending", "holding"]}}
    assert claim_filter(Actor("u", "venue", "ven_a"), {}) == {"venue_id": "ven_a"}
    assert claim_filter(ADMIN, {"school_id": "sch_b"}) == {"school_id": "sch_b"}
    with pytest.raises(Forbidden):
        claim_filter(Actor("u", "finance", "浦东新区"), {})


def test_another_school_reads_neither_claim_nor_batch(desk, repo, venues):
    session = venues.add_session()
    mine, other = make_school(repo, "甲"), make_school(repo, "乙")
    made = claim(desk, mine, session, group("一班"))
    batch = desk.batches.create(school_actor(mine), {
        "groups": [group("二班")], "session_ids": [session["session_id"]],
        "mode": "best_effort"})
    with pytest.raises(NotFound):
        desk.reads.get(school_actor(other), made["_id"])
    with pytest.raises(NotFound):
        desk.reads.batch(school_actor(other), batch["_id"])
    assert desk.reads.batch(school_actor(mine), batch["_id"])["_id"] == batch["_id"]
    listed, _ = desk.reads.list(school_actor(other), {"limit": 50})
    assert listed == []
