"""What one claim asks of the database, booking and venues together (issue #18).

Booking's desk runs on its real repository and on the venues service's own session and
hold code (`RealVenues`, in process instead of over RPC), both on this run's nx-27017,
through one client whose `CommandListener` counts every command sent.
"""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymongo
import pytest
from pymongo import monitoring

from services.booking.desk import BookingDesk
from services.booking.directory import SchoolDirectory
from services.booking.repository import BookingRepository
from services.booking.tests.conftest import group, make_school, school_actor
from services.kit.config import Settings
from services.kit.errors import NotFound, ValidationFailed
from services.venues.repository import VenueRepository
from services.venues.tests.conftest import ADMIN
from services.venues.tests.helpers import publish

BOUND = 3  # a confirmed claim: its insert, the hold, the transition


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.on = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on:
            self.seen[f"{event.database_name.split('_')[0]}.{event.command_name}"] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def counting(self) -> Commands:
        self.seen.clear()
        self.on = True
        return self

    def __enter__(self) -> Commands:
        return self

    def __exit__(self, *exc: object) -> None:
        self.on = False

    @property
    def total(self) -> int:
        return sum(self.seen.values())


class RealVenues:
    """The venues RPC booking calls, answered by the venues service's own code."""

    def __init__(self, repo: VenueRepository) -> None:
        self.repo = repo

    def get_session(self, session_id: str) -> dict[str, Any]:
        return self.repo.sessions.get(session_id)

    def get_sessions(self, session_ids: list[str]) -> list[dict[str, Any]]:
        return self.repo.sessions.get_many(session_ids)

    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int,
             expected_version: int | None = None) -> dict[str, Any]:
        return self.repo.holds.hold(session_id, claim_id, school_id, seats, expected_version)

    def release(self, session_id: str, claim_id: str) -> dict[str, Any]:
        return self.repo.holds.release(session_id, claim_id)

    def get_tutor(self, tutor_id: str) -> dict[str, Any]:
        raise NotFound("no tutors here")


@pytest.fixture()
def world(mongo_url):
    listener = Commands()
    client = pymongo.MongoClient(mongo_url, tz_aware=True, event_listeners=[listener])
    names = [f"booking_{uuid.uuid4().hex[:8]}", f"venues_{uuid.uuid4().hex[:8]}"]
    booking = BookingRepository(client[names[0]], Settings(mongo_url=mongo_url))
    booking.ensure_indexes()
    venues = VenueRepository(client[names[1]], Settings(mongo_url=mongo_url))
    venues.ensure_indexes()
    venue = venues.register_venue({
        "name": "上海科技馆", "kind": "science_museum", "district": "浦东新区",
        "location": {"lat": 31.2196, "lon": 121.5447}, "address": "世纪大道2000号",
        "timezone": "Asia/Shanghai", "contact": None, "accessibility": None}, ADMIN)
    kept: dict[str, Any] = {}  # the service's kept sessions (a TTLCache there)
    desk = BookingDesk(booking, RealVenues(venues), fault=lambda point: None,
                       sessions=kept, schools=SchoolDirectory())
    yield {"listener": listener, "booking": booking, "venues": venues, "venue": venue,
           "desk": desk}
    for name in names:
        client.drop_database(name)
    client.close()


def claim(world, school, session, key=None, **body):
    payload = {"session_id": session["session_id"], "groups": [group("一班")], **body}
    return world["desk"].claims.create(school_actor(school), payload, key)


def test_a_confirmed_claim_costs_three_commands_once_warm(world):
    session = publish(world["venues"], world["venue"], capacity=500, grades=[1, 6])
    schools = [make_school(world["booking"], name=f"学校{i}") for i in range(5)]
    claim(world, schools[0], session, "warm-up")  # reads the session and the directory
    for i, school in enumerate(schools[1:]):
        with world["listener"].counting() as seen:
            made = claim(world, school, session, f"key-{i}")
            view = world["desk"].reads.views([made])[0]
        assert view["status"] == "confirmed", made
        assert seen.total <= BOUND, dict(seen.seen)
        assert seen.seen == Counter({"booking.insert": 1, "venues.findAndModify": 1,
                                     "booking.findAndModify": 1})


def test_a_burst_from_many_schools_reads_the_directory_once(world):
    session = publish(world["venues"], world["venue"], capacity=5000, grades=[1, 6])
    schools = [make_school(world["booking"], name=f"学校{i}") for i in range(60)]
    with world["listener"].counting() as seen:
        for school in schools:
            assert claim(world, school, session)["status"] == "confirmed"
    assert seen.seen["booking.find"] == 1  # every school, in one find
    assert seen.seen["venues.find"] == 1  # the session, kept for the burst
    assert seen.total == 1 + 1 + 3 * len(schools)


def test_a_session_edited_after_the_checks_is_checked_again(world):
    venues, booking = world["venues"], world["booking"]
    session = publish(venues, world["venue"], capacity=100, grades=[1, 6])
    sid = session["session_id"]
    first, second, third = (make_school(booking, name=n) for n in ("一小", "二小", "三小"))
    claim(world, first, session)  # booking keeps this version of the session
    venues.sessions.change(sid, {"title": "星空探秘 (新)", "cancel_cutoff_hours": 48},
                           ADMIN)
    made = claim(world, second, session)
    assert made["status"] == "confirmed"
    assert (made["trip"]["title"], made["cancel_cutoff_hours"]) == ("星空探秘 (新)", 48)
    assert made["session_version"] == venues.sessions.document(sid)["version"]
    venues.sessions.change(sid, {"min_teachers_per_students": {"teachers": 1,
                                                               "per_students": 5}}, ADMIN)
    with pytest.raises(ValidationFailed) as refused:
        claim(world, third, session, "k-3")
    assert "groups.0.teachers" in refused.value.errors
    stored = booking.claims_on_session(sid, ("rejected",))
    assert [c["school_id"] for c in stored] == [third["school_id"]]
    assert venues.holds.seats(sid)["held"] == 64  # the rejected claim holds nothing
    with pytest.raises(ValidationFailed):  # its retry is refused the same way
        claim(world, third, session, "k-3")


def test_identical_requests_at_once_make_one_claim_and_both_answer_it(world):
    session = publish(world["venues"], world["venue"], capacity=100, grades=[1, 6])
    school = make_school(world["booking"])
    claim(world, make_school(world["booking"], name="二小"), session)  # warm

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: claim(world, school, session, "same"), range(8)))
    assert {a["_id"] for a in answers} == {answers[0]["_id"]}
    assert {a["status"] for a in answers} == {"confirmed"}
    seats = world["venues"].holds.seats(session["session_id"])
    assert seats["holds"][answers[0]["_id"]] == 32 and seats["held"] == 64


def test_a_waitlisted_claim_reads_its_line_once(world):
    session = publish(world["venues"], world["venue"], capacity=40, grades=[1, 6])
    first, second, third = (make_school(world["booking"], name=n) for n in ("一", "二", "三"))
    claim(world, first, session)
    claim(world, second, session)  # full: waitlisted
    with world["listener"].counting() as seen:
        made = claim(world, third, session, "k-1")
        view = world["desk"].reads.views([made])[0]
    assert (view["status"], view["waitlist_position"]) == ("waitlisted", 2)
    # insert; the hold (the session was seen full by the second claim, so only the read
    # naming the refusal, services/venues/holds.py); the line; the transition
    assert seen.seen == Counter({"booking.insert": 1,
                                 "venues.find": 1, "booking.find": 1,
                                 "booking.findAndModify": 1})
