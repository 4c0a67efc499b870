"""A claim is its own Idempotency-Key record; schools come from the process's directory."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from services.booking.claim_keys import claim_id_for, request_print
from services.booking.claims import new_claim
from services.booking.desk import BookingDesk
from services.booking.directory import MAX_AGE_S, RELOAD_AFTER_S, SchoolDirectory
from services.booking.tests.conftest import group, make_school, school_actor
from services.contracts.booking import ClaimRequest
from services.kit.boundary import load
from services.kit.errors import NotFound, ValidationFailed

VENUES_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def body(session, *groups, **extra):
    return {"session_id": session["session_id"], "groups": list(groups) or [group("一班")],
            **extra}


def test_keyed_ids_are_per_school_and_key_and_fit_the_hold_key():
    one = claim_id_for("sch_1", "k" * 200)
    assert one == claim_id_for("sch_1", "k" * 200) and VENUES_KEY.match(one)
    assert one.startswith("clm_") and one != claim_id_for("sch_2", "k" * 200)
    assert claim_id_for("sch_1", None) != claim_id_for("sch_1", None)
    with pytest.raises(ValidationFailed):
        claim_id_for("sch_1", "k" * 201)


def test_a_retry_answers_the_first_claim_and_writes_no_request_key(desk, repo, venues):
    session = venues.add_session(capacity=40)
    actor = school_actor(make_school(repo))
    first = desk.claims.create(actor, body(session), "c-1")
    again = desk.claims.create(actor, body(session, waitlist=True), "c-1")  # the default
    assert again["_id"] == first["_id"] and again["status"] == "confirmed"
    assert repo.db.claims.count_documents({}) == 1
    assert repo.db.request_keys.count_documents({}) == 0
    assert [c[0] for c in venues.calls] == ["hold"]  # a finished claim is not held again


def test_the_same_key_with_another_request_is_refused(desk, repo, venues):
    session = venues.add_session(capacity=100)
    actor = school_actor(make_school(repo))
    desk.claims.create(actor, body(session), "c-1")
    with pytest.raises(ValidationFailed) as caught:
        desk.claims.create(actor, body(session, group("一班", students=31)), "c-1")
    assert caught.value.code == "idempotency-key-reused"
    other = school_actor(make_school(repo, name="二小"))  # keys are per school
    assert desk.claims.create(other, body(session), "c-1")["status"] == "confirmed"


def test_a_retry_after_the_session_closed_still_answers_the_claim(desk, repo, venues):
    session = venues.add_session(capacity=40)
    actor = school_actor(make_school(repo))
    first = desk.claims.create(actor, body(session), "c-1")
    venues.edit(session["session_id"], status="cancelled")
    assert desk.claims.create(actor, body(session), "c-1")["_id"] == first["_id"]
    with pytest.raises(ValidationFailed):
        desk.claims.create(actor, body(session), "c-2")


def test_a_claim_caught_holding_is_finished_by_its_repeat(desk, repo, venues):
    session = venues.add_session(capacity=40)
    actor = school_actor(make_school(repo))
    claim_id = claim_id_for(actor.org, "c-1")
    request = load(ClaimRequest, body(session))
    school = repo.school(actor.org)
    repo.insert_new_claim(new_claim(claim_id, school, session, request["groups"],
                                    status="holding", actor="t",
                                    fingerprint=request_print(request, "c-1")))
    again = desk.claims.create(actor, body(session), "c-1")
    assert (again["_id"], again["status"]) == (claim_id, "confirmed")
    assert venues.holds[session["session_id"]][claim_id]["seats"] == 32


def test_a_window_claim_repeats_as_itself(desk, repo, venues):
    session = venues.add_session(policy="window", window_closes_in=timedelta(days=1))
    actor = school_actor(make_school(repo))
    first = desk.claims.create(actor, body(session), "w-1")
    assert first["status"] == "pending"
    assert desk.claims.create(actor, body(session), "w-1")["_id"] == first["_id"]
    with pytest.raises(ValidationFailed):
        desk.claims.create(actor, body(session, group("二班")), "w-1")
    assert repo.db.claims.count_documents({}) == 1


def test_a_stale_session_copy_is_read_again_before_the_hold(repo, venues):
    kept: dict = {}
    desk = BookingDesk(repo, venues, fault=lambda point: None, sessions=kept)
    session = venues.add_session(capacity=100)
    sid = session["session_id"]
    a, b = (school_actor(make_school(repo, name=n)) for n in ("一小", "二小"))
    desk.claims.create(a, body(session))
    venues.edit(sid, title="新的标题", grades=[5, 6])
    made = desk.claims.create(b, body(session))
    assert (made["status"], made["trip"]["title"], made["session_version"]) == (
        "confirmed", "新的标题", 2)
    holds = [c for c in venues.calls if c[0] == "hold"]
    assert len(holds) == 3  # the first claim, then b's stale hold and its retry
    venues.edit(sid, grades=[1, 2])  # b's kept copy says 5-6: the hold finds out
    with pytest.raises(ValidationFailed) as refused:
        desk.claims.create(b, body(session, group("二班")))
    assert "groups.0.grade" in refused.value.errors
    assert sum(1 for c in repo.claims_on_session(sid, ("rejected",))) == 1
    assert venues.sessions[sid]["seats_left"] == 100 - 64


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_directory_reads_every_school_once_and_bounds_staleness(repo):
    schools = [make_school(repo, name=f"学校{i}") for i in range(5)]
    clock = Clock()
    directory = SchoolDirectory(clock)
    reads = []
    collection = Spy(repo.db.schools, reads)
    for school in schools:
        assert directory.school(collection, school["school_id"])["name"] == school["name"]
    assert reads == ["find"]
    late = make_school(repo, name="新学校")
    assert directory.school(collection, late["school_id"])["name"] == "新学校"
    assert reads == ["find", "find_one"]  # the snapshot is young: that one school alone
    repo.db.schools.update_one({"_id": late["school_id"]}, {"$set": {"name": "改名"}})
    clock.now += MAX_AGE_S + 1  # served no longer than this from one snapshot
    assert directory.school(collection, late["school_id"])["name"] == "改名"
    assert reads == ["find", "find_one", "find"]
    directory.learn({**late, "name": "又改名"})
    assert directory.school(collection, late["school_id"])["name"] == "又改名"
    clock.now += RELOAD_AFTER_S + 1
    with pytest.raises(NotFound):
        directory.school(collection, "sch_nowhere")
    assert reads == ["find", "find_one", "find", "find"]


def test_workers_missing_together_wait_for_one_reload(repo):
    """A burst's first claims arrive at once: one reads every school, the rest wait for it."""
    schools = [make_school(repo, name=f"学校{i}") for i in range(8)]
    directory = SchoolDirectory(Clock())
    reads: list[str] = []
    started, release = threading.Event(), threading.Event()

    class Slow(Spy):
        def find(self, *args, **kwargs):
            started.set()
            assert release.wait(10), "the test never released the reload"
            return super().find(*args, **kwargs)

    collection = Slow(repo.db.schools, reads)
    arrived = threading.Semaphore(0)

    def look_up(school_id: str) -> dict:
        arrived.release()
        return directory.school(collection, school_id)

    with ThreadPoolExecutor(len(schools)) as pool:
        first = pool.submit(directory.school, collection, schools[0]["school_id"])
        assert started.wait(10)
        rest = [pool.submit(look_up, s["school_id"]) for s in schools[1:]]
        assert all(arrived.acquire(timeout=10) for _ in rest)  # all miss while it reads
        release.set()
        names = [first.result(10)["name"]] + [f.result(10)["name"] for f in rest]
    assert names == [s["name"] for s in schools]
    assert reads == ["find"]


class Spy:
    def __init__(self, collection, reads: list[str]) -> None:
        self.collection = collection
        self.reads = reads

    def find(self, *args, **kwargs):
        self.reads.append("find")
        return self.collection.find(*args, **kwargs)

    def find_one(self, *args, **kwargs):
        self.reads.append("find_one")
        return self.collection.find_one(*args, **kwargs)


def _holding_claim(desk, repo, venues, session, waitlist=True):
    """A keyed claim recorded `holding`, as an attempt leaves it just before its hold."""
    actor = school_actor(make_school(repo))
    school = repo.db.schools.find_one({"_id": actor.org})
    request = load(ClaimRequest, body(session, waitlist=waitlist))
    doc = new_claim(claim_id_for(actor.org, "k-1"), {**school, "school_id": school["_id"]},
                    session, request["groups"], status="holding", actor="t",
                    waitlist=waitlist, fingerprint=request_print(request, "k-1"))
    return repo.insert_new_claim(doc)


def test_a_hold_granted_after_another_attempt_waitlisted_the_claim_confirms_it(
        desk, repo, venues):
    """Attempt A is refused (full) and waitlists the claim; seats come free; attempt B's
    hold of the same claim succeeds: the claim is confirmed, the seats counted once."""
    session = venues.add_session(capacity=40)
    blocker = venues.hold(session["session_id"], "clm_blocker", "sch_x", 40)
    assert blocker["ok"]
    claim = _holding_claim(desk, repo, venues, session)
    first = desk.seating.hold(claim)[0]
    assert first["status"] == "waitlisted"
    venues.release(session["session_id"], "clm_blocker")
    second = desk.seating.hold(claim)[0]  # the repeat, still carrying the `holding` copy
    assert second["status"] == "confirmed"
    assert repo.claim(claim["_id"])["status"] == "confirmed"
    assert venues.holds[session["session_id"]] == {
        claim["_id"]: {"seats": claim["seats"], "school_id": claim["school_id"]}}


def test_a_hold_granted_after_another_attempt_rejected_the_claim_is_given_back(
        desk, repo, venues):
    session = venues.add_session(capacity=40)
    venues.hold(session["session_id"], "clm_blocker", "sch_x", 40)
    claim = _holding_claim(desk, repo, venues, session, waitlist=False)
    assert desk.seating.hold(claim)[0]["status"] == "rejected"
    venues.release(session["session_id"], "clm_blocker")
    late = desk.seating.hold(claim)[0]
    assert late["status"] == "rejected" and not late.get("release_pending")
    assert venues.holds[session["session_id"]] == {}  # no seat held for a rejected claim
    assert venues.sessions[session["session_id"]]["seats_left"] == 40
