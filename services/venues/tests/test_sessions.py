"""Publishing, changing and cancelling sessions: rules, ownership, events in the same write."""

from __future__ import annotations

import pytest

from services.contracts.venues import SessionChange, SessionDraft
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.kit.outbox import pending
from services.kit.pages import sort_key
from services.venues.tests.conftest import ADMIN, staff
from services.venues.tests.helpers import BASE, at, publish


def events(repo, session_id):
    doc = repo.db.sessions.find_one({"_id": session_id})
    return [env["type"] for _, env in pending(doc)]


def test_publish_snapshots_the_venue_and_announces_the_session(repo, venue):
    session = publish(repo, venue, what_to_bring="水杯 water bottle")
    assert session["status"] == "open" and session["seats_left"] == session["capacity"] == 50
    assert session["timezone"] == "Asia/Shanghai" and session["cancel_cutoff_hours"] == 24
    assert session["venue"]["name"] == "上海科技馆" and session["venue"]["district"] == "浦东新区"
    assert events(repo, session["session_id"]) == ["venues.session_published"]
    assert repo.sessions.get(session["session_id"]) == session


@pytest.mark.parametrize(("overrides", "field"), [
    ({"ends_at": "starts"}, "ends_at"),
    ({"starts_at": "past"}, "starts_at"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": 10_001}, "capacity"),
    ({"grades": [0, 6]}, "grades.0"),
    ({"grades": [3, 13]}, "grades.1"),
    ({"grades": [6, 3]}, "grades"),
    ({"grades": [3]}, "grades"),
    ({"price_fen": -1}, "price_fen"),
    ({"claim_policy": "window"}, "window_closes_at"),
    ({"claim_policy": "window", "window_closes_at": "after"}, "window_closes_at"),
    ({"window_closes_at": "before"}, "window_closes_at"),
    ({"max_seats_per_school": 51}, "max_seats_per_school"),
    ({"min_teachers_per_students": {"teachers": 0, "per_students": 10}},
     "min_teachers_per_students.teachers"),
    ({"category": "cooking"}, "category"),
    ({"audience": "adults"}, "audience"),
    ({"cancel_cutoff_hours": -1}, "cancel_cutoff_hours"),
    ({"colour": "blue"}, "colour"),
])
def test_each_rule_names_its_field(repo, venue, overrides, field):
    times = {"starts": at(days=7), "past": at(hours=-1), "after": at(days=8),
             "before": at(days=6)}
    body = {**BASE, "starts_at": at(days=7), "ends_at": at(days=7, hours=2)}
    body.update({k: times.get(v, v) if isinstance(v, str) else v for k, v in overrides.items()})
    with pytest.raises(ValidationFailed) as caught:
        repo.sessions.publish(venue, load(SessionDraft, body), staff(venue["_id"]))
    assert field in caught.value.errors, caught.value.errors
    assert repo.db.sessions.count_documents({}) == 0


def test_only_the_owning_venue_changes_a_session(repo, venue):
    session = publish(repo, venue)
    other = Actor(sub="x", role="venue", org="ven_other")
    school = Actor(sub="y", role="school", org="sch_1")
    for actor in (other, school, None):
        with pytest.raises(Forbidden):
            repo.sessions.change(session["session_id"], {"capacity": 60}, actor)
        with pytest.raises(Forbidden):
            repo.sessions.cancel(session["session_id"], "no", actor)
        with pytest.raises(Forbidden):
            repo.sessions.publish(venue, load(SessionDraft, {
                **BASE, "starts_at": at(days=7), "ends_at": at(days=7, hours=2)}), actor)
    assert repo.sessions.get(session["session_id"]) == session
    with pytest.raises(NotFound):
        repo.sessions.change("ses_missing", {"capacity": 60}, ADMIN)


def test_capacity_never_drops_below_the_seats_held(repo, venue):
    session = publish(repo, venue, capacity=50)
    sid = session["session_id"]
    repo.holds.hold(sid, "clm_1", "sch_a", 30)
    with pytest.raises(Conflict) as caught:
        repo.sessions.change(sid, {"capacity": 29}, staff(venue["_id"]))
    assert "capacity" in caught.value.errors
    changed = repo.sessions.change(sid, {"capacity": 30}, staff(venue["_id"]))
    assert (changed["capacity"], changed["seats_left"]) == (30, 0)
    grown = repo.sessions.change(sid, {"capacity": 45}, staff(venue["_id"]))
    assert (grown["capacity"], grown["seats_left"]) == (45, 15)
    kinds = events(repo, sid)
    assert kinds.count("venues.capacity_changed") == 2
    doc = repo.db.sessions.find_one({"_id": sid})
    last = [env for _, env in pending(doc)][-1]["data"]
    assert (last["capacity"], last["seats_left"]) == (45, 15)


def test_capacity_below_the_school_limit_is_refused(repo, venue):
    session = publish(repo, venue, capacity=50, max_seats_per_school=40)
    with pytest.raises(ValidationFailed) as caught:
        repo.sessions.change(session["session_id"], {"capacity": 30}, staff(venue["_id"]))
    assert "capacity" in caught.value.errors


def test_reschedule_announces_old_and_new_times(repo, venue):
    session = publish(repo, venue)
    sid = session["session_id"]
    starts, ends = at(days=9), at(days=9, hours=3)
    changed = repo.sessions.change(sid, load(SessionChange, {"starts_at": starts,
                                                             "ends_at": ends}),
                                   staff(venue["_id"]))
    assert (changed["starts_at"], changed["ends_at"]) == (starts, ends)
    doc = repo.db.sessions.find_one({"_id": sid})
    assert (doc["sort_key"], doc["end_key"]) == (sort_key(starts, sid), sort_key(ends))
    env = [env for _, env in pending(doc)][-1]
    assert env["type"] == "venues.session_rescheduled"
    assert env["data"]["previous_starts_at"] == session["starts_at"]
    assert env["data"]["starts_at"] == starts


def test_change_rules_name_the_field_and_leave_the_session_alone(repo, venue):
    session = publish(repo, venue)
    sid = session["session_id"]
    for change, field in [({"starts_at": at(hours=-2)}, "starts_at"),
                          ({"ends_at": at(days=6)}, "ends_at"),
                          ({"window_closes_at": at(days=2)}, "window_closes_at")]:
        with pytest.raises(ValidationFailed) as caught:
            repo.sessions.change(sid, change, staff(venue["_id"]))
        assert field in caught.value.errors
    with pytest.raises(ValidationFailed):
        load(SessionChange, {})
    assert repo.sessions.get(sid) == session
    assert events(repo, sid) == ["venues.session_published"]


def test_edits_are_announced_and_a_no_op_is_silent(repo, venue):
    session = publish(repo, venue)
    sid = session["session_id"]
    same = repo.sessions.change(sid, {"title": session["title"]}, staff(venue["_id"]))
    assert same == session
    changed = repo.sessions.change(sid, {"what_to_bring": "笔记本", "cancel_cutoff_hours": 48},
                                   staff(venue["_id"]))
    assert changed["cancel_cutoff_hours"] == 48
    doc = repo.db.sessions.find_one({"_id": sid})
    env = [env for _, env in pending(doc)][-1]
    assert env["type"] == "venues.session_updated"
    assert env["data"]["changed"] == ["what_to_bring", "cancel_cutoff_hours"]


def test_cancel_once_announces_once_and_then_nothing_changes(repo, venue, now):
    session = publish(repo, venue)
    sid = session["session_id"]
    reason = "暴雨 rainstorm warning"
    cancelled = repo.sessions.cancel(sid, reason, staff(venue["_id"]))
    assert cancelled["status"] == "cancelled" and cancelled["cancel_reason"] == reason
    assert repo.sessions.cancel(sid, "again", staff(venue["_id"]))["cancel_reason"] == reason
    assert events(repo, sid).count("venues.session_cancelled") == 1
    with pytest.raises(Conflict):
        repo.sessions.change(sid, {"capacity": 60}, staff(venue["_id"]))


def test_a_started_session_cannot_be_cancelled_or_changed(repo, venue, now):
    from services.kit import clock

    session = publish(repo, venue)
    now.set(clock.parse(session["starts_at"]))
    with pytest.raises(Conflict):
        repo.sessions.cancel(session["session_id"], "late", staff(venue["_id"]))
    with pytest.raises(Conflict):
        repo.sessions.change(session["session_id"], {"title": "x"}, staff(venue["_id"]))
    assert repo.sessions.get(session["session_id"])["status"] == "started"


def test_venue_edits_reach_sessions_to_come(repo, venue):
    session = publish(repo, venue)
    moved = repo.update_venue(venue["_id"], {"name": "上海自然博物馆",
                                             "location": {"lat": 31.235, "lon": 121.46}},
                              staff(venue["_id"]))
    assert moved["name"] == "上海自然博物馆"
    seen = repo.sessions.get(session["session_id"])
    assert seen["venue"]["name"] == "上海自然博物馆"
    assert seen["venue"]["location"] == {"lat": 31.235, "lon": 121.46}
    doc = repo.db.venues.find_one({"_id": venue["_id"]})
    assert [env["type"] for _, env in pending(doc)] == ["venues.venue_registered",
                                                        "venues.venue_updated"]
    with pytest.raises(Forbidden):
        repo.update_venue(venue["_id"], {"name": "x"}, staff("ven_other"))


def test_get_many_keeps_order_and_omits_the_missing(repo, venue):
    a, b = publish(repo, venue), publish(repo, venue)
    got = repo.sessions.get_many([b["session_id"], "ses_missing", a["session_id"]])
    assert [s["session_id"] for s in got] == [b["session_id"], a["session_id"]]


def test_capacity_changes_racing_holds_keep_the_counter_true(repo, venue):
    from concurrent.futures import ThreadPoolExecutor

    session = publish(repo, venue, capacity=200)
    sid = session["session_id"]

    def hold(i):
        return repo.holds.hold(sid, f"clm_{i}", f"sch_{i % 7}", 2)

    def resize(capacity):
        try:
            return repo.sessions.change(sid, {"capacity": capacity}, ADMIN)["capacity"]
        except Conflict as refused:
            return refused.code

    with ThreadPoolExecutor(10) as pool:
        sizes = [pool.submit(resize, c) for c in (150, 120, 180, 90, 160)]
        holds = [pool.submit(hold, i) for i in range(40)]
        results = [f.result() for f in holds + sizes]
    seats = repo.holds.seats(sid)
    assert seats["held"] == sum(seats["holds"].values()) <= seats["capacity"]
    assert seats["seats_left"] == seats["capacity"] - seats["held"]
    assert all(answer["ok"] for answer in results[:40])  # 80 seats fit every capacity
    assert set(results[40:]) <= {150, 120, 180, 90, 160, "busy"}
    doc = repo.db.sessions.find_one({"_id": sid})
    changed = [env["data"] for _, env in pending(doc) if env["type"] == "venues.capacity_changed"]
    assert changed and changed[-1]["capacity"] == seats["capacity"]
