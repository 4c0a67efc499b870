"""Window allocation weighs monitoring's school history, falls back to booking's own counts,
records which it used, and replays from what it recorded (issue 14, item 7)."""

from __future__ import annotations

from datetime import timedelta

import eventlet
import pytest

from services.booking.desk import BookingDesk
from services.booking.ports import BoundedHistory
from services.booking.tests.conftest import group, make_school, school_actor
from services.kit.errors import Unavailable


class FakeHistory:
    """monitoring.school_history, answering what the test says; counts the calls."""

    def __init__(self, answers=None, error=None):
        self.answers = answers or {}
        self.error = error
        self.calls = []

    def school_history(self, school_ids, term):
        self.calls.append((list(school_ids), term))
        if self.error is not None:
            raise self.error
        return {sid: self.answers.get(sid, {"confirmed_visits": 0, "no_shows": 0})
                for sid in school_ids}


def draw(repo, venues, frozen_clock, history, went_before=False):
    """Two schools claim a window session with seats for one; the allocation runs.
    `went_before`: the first school already has a trip confirmed this term (booking's
    own count says 1)."""
    desk = BookingDesk(repo, venues, fault=lambda point: None, history=history)
    session = venues.add_session(capacity=40, policy="window",
                                 window_closes_in=timedelta(hours=1))
    schools = [make_school(repo, name) for name in ("甲", "乙")]
    if went_before:
        earlier = venues.add_session(capacity=100)
        done = desk.claims.create(school_actor(schools[0]), {
            "session_id": earlier["session_id"], "groups": [group("一班")]})
        assert done["status"] == "confirmed"
    for school in schools:
        desk.claims.create(school_actor(school), {"session_id": session["session_id"],
                                                  "groups": [group("一班")]})
    frozen_clock["now"] += timedelta(hours=2)
    assert desk.windows.allocate_due() == 1
    return desk, session, [s["school_id"] for s in schools]


def first(repo, session):
    plan = repo.allocation(session["session_id"])["plan"]
    return next(i["school_id"] for i in plan if i["rank"] == 1)


@pytest.mark.parametrize("busy", [0, 1])
def test_monitorings_history_decides_the_order(repo, venues, frozen_clock, busy):
    """The school monitoring says went more often goes second, whichever it is."""
    history = FakeHistory()
    terms = []

    def answers(school_ids, term):
        terms.append(term)
        busy_school = sorted(school_ids)[busy]
        history.answers = {busy_school: {"confirmed_visits": 3, "no_shows": 1}}
        return FakeHistory.school_history(history, school_ids, term)

    history.school_history = answers
    desk, session, schools = draw(repo, venues, frozen_clock, history)
    busy_school = sorted(schools)[busy]
    assert first(repo, session) != busy_school
    assert history.calls == [(sorted(schools), terms[0])]  # one call, every school
    plan = repo.allocation(session["session_id"])["plan"]
    assert {i["facts_source"] for i in plan} == {"monitoring"}
    recorded = {i["school_id"]: (i["confirmed_visits"], i["no_shows"]) for i in plan}
    assert recorded[busy_school] == (3, 1)


@pytest.mark.parametrize("error", [Unavailable("monitoring did not answer in time"),
                                   RuntimeError("no such service: monitoring")])
def test_monitoring_failing_falls_back_to_bookings_counts_and_says_so(repo, venues,
                                                                      frozen_clock, error):
    history = FakeHistory(error=error)
    desk, session, (went, new) = draw(repo, venues, frozen_clock, history, went_before=True)
    assert len(history.calls) == 1
    plan = repo.allocation(session["session_id"])["plan"]
    assert {i["facts_source"] for i in plan} == {"booking"}
    recorded = {i["school_id"]: (i["confirmed_visits"], i["no_shows"]) for i in plan}
    assert recorded == {went: (1, 0), new: (0, 0)}  # booking's own claims, counted
    assert first(repo, session) == new


def test_a_malformed_answer_is_not_trusted(repo, venues, frozen_clock):
    history = FakeHistory()
    history.school_history = lambda ids, term: {ids[0]: {"confirmed_visits": -1,
                                                         "no_shows": 0}}
    _, session, _ = draw(repo, venues, frozen_clock, history)
    plan = repo.allocation(session["session_id"])["plan"]
    assert {i["facts_source"] for i in plan} == {"booking"}


def test_explain_replays_the_recorded_facts_without_asking_again(repo, venues, frozen_clock):
    history = FakeHistory()
    desk, session, schools = draw(repo, venues, frozen_clock, history)
    recorded = repo.allocation(session["session_id"])["plan"]
    # monitoring now says otherwise, or is gone: explain does not care
    history.answers = {s: {"confirmed_visits": 9, "no_shows": 9} for s in schools}
    history.error = Unavailable("gone")
    calls = len(history.calls)
    explained = desk.windows.explain(session["session_id"])
    assert explained["reproduced"] is True
    assert len(history.calls) == calls
    keys = ("claim_id", "rank", "confirmed_visits", "no_shows", "outcome")
    assert ([{k: i[k] for k in keys} for i in explained["order"]]
            == [{k: i[k] for k in keys} for i in sorted(recorded, key=lambda i: i["rank"])])


def test_without_monitoring_booking_counts_its_own(desk, repo, venues, frozen_clock):
    session = venues.add_session(capacity=40, policy="window",
                                 window_closes_in=timedelta(hours=1))
    school = make_school(repo)
    desk.claims.create(school_actor(school), {"session_id": session["session_id"],
                                              "groups": [group("一班")]})
    frozen_clock["now"] += timedelta(hours=2)
    assert desk.windows.allocate_due() == 1
    plan = repo.allocation(session["session_id"])["plan"]
    assert [i["facts_source"] for i in plan] == ["booking"]


def test_a_slow_monitoring_is_given_up_on_at_the_deadline():
    class Slow:
        def school_history(self, school_ids, term):
            eventlet.sleep(30)
            return {}

    with pytest.raises(Unavailable):
        BoundedHistory(Slow(), seconds=0.05).school_history(["sch_1"], "2026-autumn")
