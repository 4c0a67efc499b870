from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pymongo
import pytest

from services.booking.desk import BookingDesk
from services.booking.repository import BookingRepository
from services.kit import clock
from services.kit.config import Settings
from services.kit.errors import NotFound


class FakeVenues:
    """The venues service's seat-hold contract, in memory (atomic under a lock)."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict] = {}
        self.holds: dict[str, dict[str, dict]] = {}
        self.tutors: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.calls: list[tuple] = []

    def add_session(self, capacity: int = 100, policy: str = "first_come", grades=(1, 6),
                    starts_in=timedelta(days=7), window_closes_in=None, **extra) -> dict:
        sid = f"ses_{uuid.uuid4().hex[:8]}"
        starts = clock.now() + starts_in
        session = {"session_id": sid, "series_id": None, "venue_id": "ven_1",
                   "title": "星空探秘", "category": "science", "audience": "students",
                   "grades": list(grades), "starts_at": clock.stamp(starts),
                   "ends_at": clock.stamp(starts + timedelta(hours=2)), "capacity": capacity,
                   "seats_left": capacity, "price_fen": 0, "claim_policy": policy,
                   "window_closes_at": clock.stamp(clock.now() + window_closes_in)
                   if window_closes_in is not None else None,
                   "max_seats_per_school": None, "min_teachers_per_students": None,
                   "cancel_cutoff_hours": 24, "what_to_bring": "水杯", "status": "open",
                   "timezone": "Asia/Shanghai",
                   "venue": {"name": "上海天文馆", "address": "临港大道380号"}, **extra}
        self.sessions[sid] = session
        self.holds[sid] = {}
        return session

    def get_session(self, session_id: str) -> dict:
        if session_id not in self.sessions:
            raise NotFound("no session")
        return dict(self.sessions[session_id])

    def get_sessions(self, session_ids: list[str]) -> list[dict]:
        return [dict(self.sessions[s]) for s in session_ids if s in self.sessions]

    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int) -> dict:
        with self.lock:
            self.calls.append(("hold", session_id, claim_id, seats))
            session = self.sessions.get(session_id)
            if session is None:
                return {"ok": False, "reason": "not_found", "seats": 0, "seats_left": 0}
            holds = self.holds[session_id]
            if claim_id in holds:
                return {"ok": True, "reason": None, "seats": holds[claim_id]["seats"],
                        "seats_left": session["seats_left"]}
            if session["status"] == "cancelled":
                return {"ok": False, "reason": "cancelled", "seats": 0,
                        "seats_left": session["seats_left"]}
            limit = session.get("max_seats_per_school")
            mine = sum(h["seats"] for h in holds.values() if h["school_id"] == school_id)
            if limit is not None and mine + seats > limit:
                return {"ok": False, "reason": "over_school_limit", "seats": 0,
                        "seats_left": session["seats_left"]}
            if seats > session["seats_left"]:
                return {"ok": False, "reason": "full", "seats": 0,
                        "seats_left": session["seats_left"]}
            holds[claim_id] = {"seats": seats, "school_id": school_id}
            session["seats_left"] -= seats
            return {"ok": True, "reason": None, "seats": seats,
                    "seats_left": session["seats_left"]}

    def release(self, session_id: str, claim_id: str) -> dict:
        with self.lock:
            self.calls.append(("release", session_id, claim_id))
            hold = self.holds.get(session_id, {}).pop(claim_id, None)
            if hold:
                self.sessions[session_id]["seats_left"] += hold["seats"]
            return {"released": hold["seats"] if hold else 0,
                    "seats_left": self.sessions.get(session_id, {}).get("seats_left", 0)}

    def get_tutor(self, tutor_id: str) -> dict:
        if tutor_id not in self.tutors:
            raise NotFound("no tutor")
        return self.tutors[tutor_id]


@pytest.fixture()
def repo(mongo_url):
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    name = f"unit_booking_{uuid.uuid4().hex[:8]}"
    repository = BookingRepository(client[name], Settings(mongo_url=mongo_url))
    repository.ensure_indexes()
    yield repository
    client.drop_database(name)
    client.close()


@pytest.fixture()
def venues():
    return FakeVenues()


@pytest.fixture()
def desk(repo, venues):
    return BookingDesk(repo, venues, fault=lambda point: None)


@pytest.fixture()
def frozen_clock():
    """A clock the test moves by hand."""
    state = {"now": datetime(2026, 11, 23, 2, 0, tzinfo=UTC)}
    clock.set_clock(lambda: state["now"])
    yield state
    clock.set_clock(None)


def make_school(repo, name="一小", rural=False, under_resourced=False):
    return repo.register_school({"name": name, "district": "浦东新区",
                                 "location": {"lat": 31.0, "lon": 121.0}, "rural": rural,
                                 "under_resourced": under_resourced, "students": 500})


def school_actor(school):
    return {"role": "school", "org": school["school_id"], "sub": f"t-{school['school_id']}"}


def group(label, students=30, teachers=2, grade=5):
    return {"label": label, "grade": grade, "students": students, "teachers": teachers}
