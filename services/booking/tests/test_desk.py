"""The claim flow against a real nx-27017 and an in-memory venues service."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.booking.tests.conftest import group, make_school, school_actor
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed


def claim(desk, school, session, *groups, waitlist=True, key=None):
    return desk.claims.create(school_actor(school), {
        "session_id": session["session_id"], "groups": list(groups), "waitlist": waitlist},
        key)


def test_first_come_confirms_then_waitlists_then_rejects(desk, repo, venues):
    session = venues.add_session(capacity=70)
    a, b, c = (make_school(repo, n) for n in ("一小", "二小", "三小"))
    assert claim(desk, a, session, group("一班"))["status"] == "confirmed"  # 32 seats
    assert claim(desk, b, session, group("一班"))["status"] == "confirmed"  # 64
    waiting = claim(desk, c, session, group("一班"))
    assert waiting["status"] == "waitlisted"
    rejected = claim(desk, c, session, group("二班"), waitlist=False)
    assert rejected["status"] == "rejected" and "no seats" in rejected["reason"]
    assert venues.sessions[session["session_id"]]["seats_left"] == 6
    doc = repo.claim(waiting["_id"])
    assert doc["outbox_pending"] >= 1 and doc["status"] == "waitlisted"


def test_validation_names_the_group(desk, repo, venues):
    session = venues.add_session(grades=(1, 3),
                                 min_teachers_per_students={"teachers": 1, "per_students": 10})
    school = make_school(repo)
    with pytest.raises(ValidationFailed) as caught:
        claim(desk, school, session, group("一班", grade=2, students=30, teachers=2),
              group("五班", grade=5, students=10, teachers=1))
    assert set(caught.value.errors) == {"groups.0.teachers", "groups.1.grade"}
    with pytest.raises(ValidationFailed) as caught:
        desk.claims.create(school_actor(school), {"session_id": "ses_nope",
                                                 "groups": [group("一班", grade=2)]})
    assert "session_id" in caught.value.errors


def test_cancel_releases_and_promotes_the_waitlist_in_order(desk, repo, venues):
    session = venues.add_session(capacity=64)
    schools = [make_school(repo, f"{i}小") for i in range(4)]
    first = claim(desk, schools[0], session, group("一班"))
    claim(desk, schools[1], session, group("一班"))
    w1 = claim(desk, schools[2], session, group("一班"))
    w2 = claim(desk, schools[3], session, group("一班"))
    assert (w1["status"], w2["status"]) == ("waitlisted", "waitlisted")
    cancelled = desk.claims.cancel(school_actor(schools[0]), first["_id"])
    assert cancelled["status"] == "cancelled" and "release_pending" not in cancelled
    assert repo.claim(w1["_id"])["status"] == "confirmed"
    assert repo.claim(w2["_id"])["status"] == "waitlisted"
    assert venues.sessions[session["session_id"]]["seats_left"] == 0


def test_a_school_cannot_cancel_another_schools_claim_or_after_the_cutoff(desk, repo, venues):
    session = venues.add_session(starts_in=timedelta(hours=10))
    mine, other = make_school(repo, "甲"), make_school(repo, "乙")
    done = claim(desk, mine, session, group("一班"))
    with pytest.raises(NotFound):
        desk.claims.cancel(school_actor(other), done["_id"])
    with pytest.raises(Conflict) as caught:
        desk.claims.cancel(school_actor(mine), done["_id"])
    assert caught.value.code == "cancel-cutoff-passed"
    with pytest.raises(Forbidden):
        desk.claims.create(Actor(sub="v-1", role="venue", org="ven_1"), {})


def test_idempotency_key_returns_the_first_claim_and_holds_once(desk, repo, venues):
    session = venues.add_session()
    school = make_school(repo)
    first = claim(desk, school, session, group("一班"), key="k-1")
    again = claim(desk, school, session, group("一班"), key="k-1")
    assert first["_id"] == again["_id"]
    assert [c for c in venues.calls if c[0] == "hold"] == [
        ("hold", session["session_id"], first["_id"], 32)]


def test_venue_cancellation_cancels_every_claim(desk, repo, venues):
    session = venues.add_session(capacity=40)
    a, b = make_school(repo, "甲"), make_school(repo, "乙")
    claim(desk, a, session, group("一班"))
    claim(desk, b, session, group("一班"))
    venues.sessions[session["session_id"]]["status"] = "cancelled"
    assert desk.claims.session_cancelled(session["session_id"], "闭馆维修") == 2
    for doc in repo.claims_on_session(session["session_id"], ("cancelled",)):
        assert doc["cancelled_by"] == "venue" and doc["reason"] == "闭馆维修"


def test_batch_all_or_nothing_holds_nothing_when_it_cannot_fit(desk, repo, venues):
    s1, s2 = venues.add_session(capacity=70), venues.add_session(capacity=40)
    school = make_school(repo)
    body = {"groups": [group(f"{i}班") for i in range(1, 5)],
            "session_ids": [s1["session_id"], s2["session_id"]], "mode": "all_or_nothing"}
    batch = desk.batches.create(school_actor(school), body)
    assert batch["state"] == "failed"
    assert all(not holds for holds in venues.holds.values())
    best = desk.batches.create(school_actor(school), {**body, "mode": "best_effort"})
    view = desk.batches.view(best)
    assert [a["status"] for a in view["assignments"]] == ["confirmed"] * 3 + ["unplaced"]
    assert [a["session_id"] for a in view["assignments"][:3]] == [
        s1["session_id"], s1["session_id"], s2["session_id"]]


def test_batch_all_or_nothing_releases_holds_when_one_is_refused(desk, repo, venues):
    s1, s2 = venues.add_session(capacity=40), venues.add_session(capacity=40)
    school = make_school(repo)
    original = venues.hold

    def refuse_second(session_id, claim_id, school_id, seats):
        if session_id == s2["session_id"]:
            return {"ok": False, "reason": "full", "seats": 0, "seats_left": 0}
        return original(session_id, claim_id, school_id, seats)

    venues.hold = refuse_second
    batch = desk.batches.create(school_actor(school), {
        "groups": [group("1班"), group("2班")],
        "session_ids": [s1["session_id"], s2["session_id"]], "mode": "all_or_nothing"})
    assert batch["state"] == "failed"
    assert venues.holds[s1["session_id"]] == {} and venues.holds[s2["session_id"]] == {}
    assert {c["status"] for c in repo.claims_of_batch(batch["_id"])} == {"rejected"}


def test_window_claims_wait_then_allocation_places_priority_schools(desk, repo, venues,
                                                                     frozen_clock):
    session = venues.add_session(capacity=64, policy="window",
                                 window_closes_in=timedelta(hours=1))
    city = [make_school(repo, f"城区{i}") for i in range(4)]
    rural = make_school(repo, "乡村", rural=True)
    claims = [claim(desk, s, session, group("一班")) for s in city + [rural]]
    assert {c["status"] for c in claims} == {"pending"}
    assert desk.windows.allocate_due() == 0  # the window is still open
    frozen_clock["now"] += timedelta(hours=2)
    assert desk.windows.allocate_due() == 1
    statuses = {c["school_id"]: repo.claim(c["_id"])["status"] for c in claims}
    assert statuses[rural["school_id"]] == "confirmed"
    assert sorted(statuses.values()).count("confirmed") == 2
    explained = desk.windows.explain(session["session_id"])
    assert explained["reproduced"] is True and explained["order"][0]["priority_school"]


def test_sweep_finishes_a_claim_left_holding(desk, repo, venues, frozen_clock):
    session = venues.add_session()
    school = make_school(repo)
    original = venues.hold

    def crash(*args):
        raise RuntimeError("booking died before hearing the answer")

    venues.hold = crash
    with pytest.raises(RuntimeError):
        claim(desk, school, session, group("一班"))
    stuck = repo.db.claims.find_one({"status": "holding"})
    venues.hold = original
    assert desk.recovery.sweep()["holding"] == 0  # still within its grace period
    frozen_clock["now"] += timedelta(seconds=30)
    assert desk.recovery.sweep(interrupted=False)["holding"] == 0  # allocations only
    assert desk.recovery.sweep()["holding"] == 1
    assert repo.claim(stuck["_id"])["status"] == "confirmed"
    assert clock.now() > clock.parse(stuck["updated_at"])


def test_listing_pages_through_every_claim_once(desk, repo, venues):
    session = venues.add_session(capacity=1000)
    school = make_school(repo)
    made = {claim(desk, school, session, group(f"{i}班", students=5, teachers=1))["_id"]
            for i in range(7)}
    seen, cursor = [], None
    while True:
        docs, cursor = repo.list_claims({"school_id": school["school_id"]}, 3, cursor)
        seen += [d["_id"] for d in docs]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 7
