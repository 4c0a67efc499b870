"""Seat holds: one conditional update keyed by the claim; refusals are answers."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from services.kit import clock
from services.kit.errors import Conflict, NotFound, ValidationFailed
from services.venues.tests.conftest import ADMIN
from services.venues.tests.helpers import at, publish


def consistent(repo, session_id):
    seats = repo.holds.seats(session_id)
    assert seats["held"] == sum(seats["holds"].values())
    assert seats["seats_left"] == seats["capacity"] - seats["held"] >= 0
    return seats


def test_hold_takes_seats_and_a_repeat_changes_nothing(repo, venue):
    session = publish(repo, venue, capacity=50)
    first = repo.holds.hold(session["session_id"], "clm_1", "sch_a", 12)
    assert first == {"ok": True, "reason": None, "seats": 12, "seats_left": 38,
                     "repeated": False}
    again = repo.holds.hold(session["session_id"], "clm_1", "sch_a", 12)
    assert again == {**first, "repeated": True}
    assert consistent(repo, session["session_id"])["holds"] == {"clm_1": 12}
    with pytest.raises(Conflict):
        repo.holds.hold(session["session_id"], "clm_1", "sch_a", 13)


def test_refusals_name_their_reason_and_change_nothing(repo, venue, now):
    session = publish(repo, venue, capacity=30, max_seats_per_school=20)
    sid = session["session_id"]
    assert repo.holds.hold(sid, "clm_1", "sch_a", 15)["ok"]
    over = repo.holds.hold(sid, "clm_2", "sch_a", 6)
    assert (over["ok"], over["reason"]) == (False, "over_school_limit")
    assert repo.holds.hold(sid, "clm_3", "sch_a", 5)["ok"]  # exactly at the limit
    full = repo.holds.hold(sid, "clm_4", "sch_b", 11)
    assert (full["ok"], full["reason"], full["seats_left"]) == (False, "full", 10)
    assert repo.holds.hold(sid, "clm_5", "sch_b", 10)["seats_left"] == 0
    assert repo.holds.hold("ses_missing", "clm_6", "sch_b", 1)["reason"] == "not_found"
    assert consistent(repo, sid)["holds"] == {"clm_1": 15, "clm_3": 5, "clm_5": 10}
    now.set(clock.parse(session["starts_at"]))
    assert repo.holds.hold(sid, "clm_7", "sch_c", 1)["reason"] == "closed"


def test_a_cancelled_session_refuses_but_releases(repo, venue):
    session = publish(repo, venue)
    sid = session["session_id"]
    repo.holds.hold(sid, "clm_1", "sch_a", 10)
    repo.sessions.cancel(sid, "burst pipe", ADMIN)
    assert repo.holds.hold(sid, "clm_2", "sch_a", 1)["reason"] == "cancelled"
    assert repo.holds.release(sid, "clm_1") == {"released": 10, "seats_left": 50}


def test_release_is_idempotent_and_frees_the_school_limit(repo, venue):
    session = publish(repo, venue, capacity=40, max_seats_per_school=10)
    sid = session["session_id"]
    repo.holds.hold(sid, "clm_1", "sch_a", 10)
    assert repo.holds.release(sid, "clm_1") == {"released": 10, "seats_left": 40}
    assert repo.holds.release(sid, "clm_1") == {"released": 0, "seats_left": 40}
    assert repo.holds.release(sid, "clm_never") == {"released": 0, "seats_left": 40}
    assert repo.holds.hold(sid, "clm_2", "sch_a", 10)["ok"]
    consistent(repo, sid)
    with pytest.raises(NotFound):
        repo.holds.release("ses_missing", "clm_1")


def test_a_window_session_is_held_after_its_window_closed(repo, venue, now):
    session = publish(repo, venue, claim_policy="window", window_closes_at=at(days=2))
    now.set(clock.now() + timedelta(days=3))  # the window closed; allocation runs now
    assert repo.holds.hold(session["session_id"], "clm_1", "sch_a", 30)["ok"]


def test_bad_arguments_are_validation_errors(repo, venue):
    sid = publish(repo, venue)["session_id"]
    for args, field in [(("clm.1", "sch_a", 1), "claim_id"), (("clm_1", "sch$a", 1), "school_id"),
                        (("clm_1", "sch_a", 0), "seats"), (("clm_1", "sch_a", "2"), "seats"),
                        (("clm_1", "sch_a", 10_001), "seats")]:
        with pytest.raises(ValidationFailed) as caught:
            repo.holds.hold(sid, *args)
        assert field in caught.value.errors
    assert consistent(repo, sid)["held"] == 0


def test_racing_holds_never_oversell(repo, venue):
    session = publish(repo, venue, capacity=60, max_seats_per_school=25)
    sid = session["session_id"]
    rng = random.Random(7)
    asks = [(f"clm_{i}", f"sch_{rng.randint(1, 6)}", rng.randint(1, 12)) for i in range(60)]
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda a: repo.holds.hold(sid, *a), asks))
    seats = consistent(repo, sid)
    accepted = {claim: n for (claim, _, n), answer in zip(asks, answers, strict=True)
                if answer["ok"]}
    assert seats["holds"] == accepted
    assert sum(accepted.values()) <= 60
    assert all(v <= 25 for v in seats["per_school"].values())
    assert {a["reason"] for a in answers if not a["ok"]} <= {"full", "over_school_limit"}


class Counted:
    """The sessions collection, recording which of its methods a hold calls."""

    def __init__(self, collection) -> None:
        self.collection = collection
        self.sent: list[str] = []

    def __getattr__(self, name: str):
        method = getattr(self.collection, name)

        def counted(*args, **kwargs):
            self.sent.append(name)
            return method(*args, **kwargs)
        return counted


def test_a_session_seen_full_refuses_the_next_claim_with_one_read(repo, venue):
    """The burst's waitlisted claims: once a hold was refused as full, a claim wanting more
    than was left is read first (one command), and seats given back are still found."""
    sid = publish(repo, venue, capacity=20)["session_id"]
    counted = repo.holds.sessions = Counted(repo.holds.sessions)
    assert repo.holds.hold(sid, "clm_1", "sch_a", 15)["ok"]
    assert counted.sent == ["find_one_and_update"]
    counted.sent.clear()
    assert repo.holds.hold(sid, "clm_2", "sch_b", 10)["reason"] == "full"  # not yet seen
    assert counted.sent == ["find_one_and_update", "find_one"]
    counted.sent.clear()
    assert repo.holds.hold(sid, "clm_3", "sch_c", 6)["reason"] == "full"
    assert counted.sent == ["find_one"]
    counted.sent.clear()
    assert repo.holds.hold(sid, "clm_4", "sch_d", 5)["ok"]  # fits what was left: one write
    assert counted.sent == ["find_one_and_update"]
    assert repo.holds.release(sid, "clm_1")["released"] == 15
    counted.sent.clear()
    assert repo.holds.hold(sid, "clm_3", "sch_c", 6)["ok"]  # seen full, now room: read, write
    assert counted.sent == ["find_one", "find_one_and_update"]
    counted.sent.clear()
    assert repo.holds.hold(sid, "clm_5", "sch_e", 6)["ok"]  # and the write comes first again
    assert counted.sent == ["find_one_and_update"]
    assert consistent(repo, sid)["holds"] == {"clm_3": 6, "clm_4": 5, "clm_5": 6}
