"""Booking's fake venues and the real seat holds answer every hold and release the same.

Booking's unit tests run against `FakeVenues` (services/booking/tests/conftest.py); the
venues service decides holds with `Holds` (services/venues/holds.py). Each case below runs
on both, the real one on this run's nx-27017, so the fake cannot drift from the contract
(contracts.venues.HoldAnswer / ReleaseAnswer) booking relies on.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
import pytest

from services.booking.tests.conftest import FakeVenues
from services.kit import clock
from services.kit.config import Settings
from services.kit.errors import Conflict, NotFound
from services.venues.repository import VenueRepository
from services.venues.tests.conftest import ADMIN
from services.venues.tests.helpers import publish

NOW = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)


class FakeSide:
    """Sessions and holds as booking's unit tests see them."""

    def __init__(self) -> None:
        self.venues = FakeVenues()
        self.holds = self.venues

    def session(self, capacity: int, limit: int | None = None) -> dict[str, Any]:
        return self.venues.add_session(capacity=capacity, max_seats_per_school=limit)

    def cancel(self, session_id: str) -> None:
        self.venues.edit(session_id, status="cancelled")

    def edit(self, session_id: str, **change: Any) -> None:
        self.venues.edit(session_id, **change)


class RealSide:
    """Sessions published by the venues service's own code, held by its `Holds`."""

    def __init__(self, db: Any) -> None:
        self.repo = VenueRepository(db, Settings())
        self.repo.ensure_indexes()
        self.holds = self.repo.holds
        self.venue = self.repo.register_venue({
            "name": "上海科技馆", "kind": "science_museum", "district": "浦东新区",
            "location": {"lat": 31.2196, "lon": 121.5447}, "address": "世纪大道2000号",
            "timezone": "Asia/Shanghai", "contact": None, "accessibility": None}, ADMIN)

    def session(self, capacity: int, limit: int | None = None) -> dict[str, Any]:
        return publish(self.repo, self.venue, capacity=capacity, grades=[1, 6],
                       max_seats_per_school=limit)

    def cancel(self, session_id: str) -> None:
        self.repo.sessions.cancel(session_id, "闭馆", ADMIN)

    def edit(self, session_id: str, **change: Any) -> None:
        self.repo.sessions.change(session_id, change, ADMIN)


@pytest.fixture()
def now():
    state = {"now": NOW}
    clock.set_clock(lambda: state["now"])
    yield state
    clock.set_clock(None)


@pytest.fixture(params=["fake", "real"])
def side(request, mongo_url, now):
    if request.param == "fake":
        yield FakeSide()
        return
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    name = f"contract_{uuid.uuid4().hex[:10]}"
    try:
        yield RealSide(client[name])
    finally:
        client.drop_database(name)
        client.close()


def test_a_hold_takes_seats_and_a_repeat_changes_nothing(side):
    sid = side.session(capacity=50)["session_id"]
    first = side.holds.hold(sid, "clm_1", "sch_a", 12)
    assert first == {"ok": True, "reason": None, "seats": 12, "seats_left": 38,
                     "repeated": False}
    assert side.holds.hold(sid, "clm_1", "sch_a", 12) == {**first, "repeated": True}
    with pytest.raises(Conflict):
        side.holds.hold(sid, "clm_1", "sch_a", 13)
    assert side.holds.hold(sid, "clm_2", "sch_b", 38)["seats_left"] == 0


def test_refusals_name_their_reason_and_change_nothing(side):
    sid = side.session(capacity=30, limit=20)["session_id"]
    assert side.holds.hold(sid, "clm_1", "sch_a", 15)["ok"]
    over = side.holds.hold(sid, "clm_2", "sch_a", 6)
    assert (over["ok"], over["reason"], over["seats_left"]) == (False, "over_school_limit", 15)
    assert side.holds.hold(sid, "clm_3", "sch_a", 5)["ok"]  # exactly at the limit
    full = side.holds.hold(sid, "clm_4", "sch_b", 11)
    assert (full["ok"], full["reason"], full["seats_left"]) == (False, "full", 10)
    assert side.holds.hold(sid, "clm_5", "sch_b", 10)["seats_left"] == 0
    missing = side.holds.hold("ses_missing", "clm_6", "sch_b", 1)
    assert (missing["ok"], missing["reason"]) == (False, "not_found")


def test_a_started_session_refuses_as_closed(side, now):
    session = side.session(capacity=30)
    now["now"] = clock.parse(session["starts_at"]) + timedelta(minutes=1)
    answer = side.holds.hold(session["session_id"], "clm_1", "sch_a", 1)
    assert (answer["ok"], answer["reason"]) == (False, "closed")


def test_a_cancelled_session_refuses_but_releases(side):
    sid = side.session(capacity=50)["session_id"]
    side.holds.hold(sid, "clm_1", "sch_a", 10)
    side.cancel(sid)
    refused = side.holds.hold(sid, "clm_2", "sch_a", 1)
    assert (refused["ok"], refused["reason"]) == (False, "cancelled")
    assert side.holds.release(sid, "clm_1") == {"released": 10, "seats_left": 50}


def test_release_is_idempotent_and_frees_the_school_limit(side):
    sid = side.session(capacity=40, limit=10)["session_id"]
    side.holds.hold(sid, "clm_1", "sch_a", 10)
    assert side.holds.release(sid, "clm_1") == {"released": 10, "seats_left": 40}
    assert side.holds.release(sid, "clm_1") == {"released": 0, "seats_left": 40}
    assert side.holds.release(sid, "clm_never") == {"released": 0, "seats_left": 40}
    assert side.holds.hold(sid, "clm_2", "sch_a", 10)["ok"]
    with pytest.raises(NotFound):
        side.holds.release("ses_missing", "clm_1")


def test_a_hold_proves_the_session_version_it_was_checked_against(side):
    session = side.session(capacity=40)
    sid, checked = session["session_id"], session["version"]
    assert side.holds.hold(sid, "clm_1", "sch_a", 5, checked)["ok"]
    assert side.holds.hold(sid, "clm_2", "sch_a", 5)["ok"]  # no version: as before
    side.edit(sid, title="新标题")  # an edit moves the version on; holds did not
    stale = side.holds.hold(sid, "clm_3", "sch_b", 5, checked)
    assert (stale["ok"], stale["reason"], stale["seats_left"]) == (False, "stale", 30)
    assert side.holds.hold(sid, "clm_1", "sch_a", 5, checked) == {
        "ok": True, "reason": None, "seats": 5, "seats_left": 30, "repeated": True}
    assert side.holds.hold(sid, "clm_3", "sch_b", 5, checked + 1)["seats_left"] == 25
    side.cancel(sid)  # cancelled says so, whatever version was checked
    assert side.holds.hold(sid, "clm_4", "sch_b", 1, checked + 1)["reason"] == "cancelled"


def test_a_stale_hold_on_a_limited_session_changes_nothing(side):
    session = side.session(capacity=40, limit=10)
    sid, checked = session["session_id"], session["version"]
    side.edit(sid, max_seats_per_school=12)
    assert side.holds.hold(sid, "clm_1", "sch_a", 11, checked)["reason"] == "stale"
    assert side.holds.hold(sid, "clm_1", "sch_a", 11, checked + 1)["ok"]
    assert side.holds.release(sid, "clm_1") == {"released": 11, "seats_left": 40}
