"""Window allocation: it runs at the session's current window close, never before."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.booking.tests.conftest import group, make_school, school_actor
from services.kit import clock


def claim(desk, school, session, *groups):
    return desk.claims.create(school_actor(school), {
        "session_id": session["session_id"], "groups": list(groups)})


def extend(venues, session, hours):
    closes = clock.stamp(clock.now() + timedelta(hours=hours))
    venues.sessions[session["session_id"]]["window_closes_at"] = closes
    return closes


def test_an_extended_window_moves_the_allocation_and_strands_no_claim(desk, repo, venues,
                                                                      frozen_clock):
    session = venues.add_session(capacity=100, policy="window",
                                 window_closes_in=timedelta(hours=1))
    early = claim(desk, make_school(repo, "甲"), session, group("一班"))
    closes = extend(venues, session, hours=3)
    assert desk.windows.window_moved(session["session_id"], closes) is True
    frozen_clock["now"] += timedelta(hours=2)  # past the old close, before the new one
    assert desk.windows.allocate_due() == 0
    late = claim(desk, make_school(repo, "乙"), session, group("一班"))
    assert late["status"] == "pending"
    frozen_clock["now"] += timedelta(hours=2)
    assert desk.windows.allocate_due() == 1
    assert {repo.claim(c["_id"])["status"] for c in (early, late)} == {"confirmed"}


def test_an_allocation_never_completes_before_the_current_close(desk, repo, venues,
                                                                frozen_clock):
    """The move event may come late (or be lost): the allocation checks the session itself."""
    session = venues.add_session(capacity=100, policy="window",
                                 window_closes_in=timedelta(hours=1))
    early = claim(desk, make_school(repo, "甲"), session, group("一班"))
    closes = extend(venues, session, hours=3)
    frozen_clock["now"] += timedelta(hours=2)
    desk.windows.allocate_due()
    alloc = repo.allocation(session["session_id"])
    assert (alloc["state"], alloc["closes_at"]) == ("open", closes) and "seed" not in alloc
    late = claim(desk, make_school(repo, "乙"), session, group("一班"))
    assert repo.claim(early["_id"])["status"] == "pending"
    frozen_clock["now"] += timedelta(hours=2)
    assert desk.windows.allocate_due() == 1
    assert repo.allocation(session["session_id"])["state"] == "completed"
    assert {repo.claim(c["_id"])["status"] for c in (early, late)} == {"confirmed"}


def test_a_claim_after_an_early_allocation_is_first_come_not_stranded(desk, repo, venues,
                                                                      frozen_clock):
    """An allocation that did run at the old close leaves later claims first-come."""
    session = venues.add_session(capacity=100, policy="window",
                                 window_closes_in=timedelta(hours=1))
    claim(desk, make_school(repo, "甲"), session, group("一班"))
    frozen_clock["now"] += timedelta(hours=2)
    assert desk.windows.allocate_due() == 1
    extend(venues, session, hours=3)  # extended after the allocation ran
    late = claim(desk, make_school(repo, "乙"), session, group("一班"))
    assert late["status"] == "confirmed"


def test_a_failed_split_surfaces_its_own_error_not_not_found(desk, repo, venues,
                                                             frozen_clock, monkeypatch):
    session = venues.add_session(capacity=40, policy="window",
                                 window_closes_in=timedelta(hours=1))
    big = claim(desk, make_school(repo), session, group("一班"), group("二班"))
    inserting = repo.insert_claims

    def disk_full(docs, events=None):
        if docs[0]["_id"] == f"{big['_id']}-w":
            raise RuntimeError("disk full")
        return inserting(docs, events)

    monkeypatch.setattr(repo, "insert_claims", disk_full)
    frozen_clock["now"] += timedelta(hours=2)
    with pytest.raises(RuntimeError, match="disk full"):
        desk.windows.allocate_due()
    monkeypatch.setattr(repo, "insert_claims", inserting)
    frozen_clock["now"] += timedelta(minutes=5)  # the allocator's lease runs out: resumed
    assert desk.windows.allocate_due() == 1
    assert repo.claim(big["_id"])["status"] == "confirmed"
    assert repo.claim(f"{big['_id']}-w")["status"] == "waitlisted"
