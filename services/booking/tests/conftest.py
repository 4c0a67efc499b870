from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pymongo
import pytest

from services.booking.desk import BookingDesk
from services.booking.repository import BookingRepository
from services.booking.schools import register_school
from services.kit import clock
from services.kit.actor import Actor
from services.kit.config import Settings
from services.kit.errors import Conflict, NotFound


class FakeVenues:
    """The venues service's seat-hold contract, in memory (atomic under a lock).

    tests/test_holds_contract.py runs it and the real `venues.holds.Holds` against the same
    cases, so the two cannot drift.
    """

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
                   "venue": {"name": "上海天文馆", "address": "临港大道380号"}, "version": 1,
                   **extra}
        self.sessions[sid] = session
        self.holds[sid] = {}
        return session

    def get_session(self, session_id: str) -> dict:
        if session_id not in self.sessions:
            raise NotFound("no session")
        return dict(self.sessions[session_id])

    def edit(self, session_id: str, **changes) -> None:
        """What venues does on an edit or a cancellation: the version moves on."""
        session = self.sessions[session_id]
        session.update(changes, version=session.get("version", 1) + 1)

    def get_sessions(self, session_ids: list[str]) -> list[dict]:
        return [dict(self.sessions[s]) for s in session_ids if s in self.sessions]

    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int,
             expected_version: int | None = None) -> dict:
        with self.lock:
            self.calls.append(("hold", session_id, claim_id, seats))
            session = self.sessions.get(session_id)
            if session is None:
                return self._answer(False, seats, 0, "not_found")
            holds = self.holds[session_id]
            if claim_id in holds:
                held = holds[claim_id]
                if held["seats"] != seats or held["school_id"] != school_id:
                    raise Conflict(f"claim {claim_id} already holds {held['seats']} seats",
                                   code="hold-differs")
                return self._answer(True, seats, session["seats_left"], repeated=True)
            refusal = self._refusal(session, holds, school_id, seats, expected_version)
            if refusal:
                return self._answer(False, seats, session["seats_left"], refusal)
            holds[claim_id] = {"seats": seats, "school_id": school_id}
            session["seats_left"] -= seats
            return self._answer(True, seats, session["seats_left"])

    @staticmethod
    def _refusal(session: dict, holds: dict, school_id: str, seats: int,
                 expected_version: int | None) -> str | None:
        if session["status"] == "cancelled":
            return "cancelled"
        if clock.parse(session["starts_at"]) <= clock.now():
            return "closed"
        if expected_version is not None and session.get("version") != expected_version:
            return "stale"
        limit = session.get("max_seats_per_school")
        mine = sum(h["seats"] for h in holds.values() if h["school_id"] == school_id)
        if limit is not None and mine + seats > limit:
            return "over_school_limit"
        if seats > session["seats_left"]:
            return "full"
        return None

    @staticmethod
    def _answer(ok: bool, seats: int, seats_left: int, reason: str | None = None,
                repeated: bool = False) -> dict:
        return {"ok": ok, "reason": reason, "seats": seats, "seats_left": seats_left,
                "repeated": repeated}

    def release(self, session_id: str, claim_id: str) -> dict:
        with self.lock:
            self.calls.append(("release", session_id, claim_id))
            if session_id not in self.sessions:
                raise NotFound(f"session {session_id} not found", code="session-not-found")
            hold = self.holds[session_id].pop(claim_id, None)
            if hold:
                self.sessions[session_id]["seats_left"] += hold["seats"]
            return {"released": hold["seats"] if hold else 0,
                    "seats_left": self.sessions[session_id]["seats_left"]}

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


ADMIN = Actor(sub="t-admin", role="admin")


DISTRICT_IDS = {"浦东新区": "dis_pudong", "徐汇区": "dis_xuhui"}


def known_district(repo, name="浦东新区"):
    """The district's id, after booking heard identity register it."""
    district_id = DISTRICT_IDS.get(name, f"dis_{abs(hash(name)) % 10**8}")
    repo.districts.learn({"district_id": district_id, "name": name, "code": district_id[4:],
                          "timezone": "Asia/Shanghai"})
    return district_id


def make_school(repo, name="一小", rural=False, under_resourced=False, district="浦东新区"):
    return register_school(repo, ADMIN, {"name": name,
                                         "district_id": known_district(repo, district),
                                         "location": {"lat": 31.0, "lon": 121.0},
                                         "rural": rural, "under_resourced": under_resourced,
                                         "students": 500})


def school_actor(school):
    return Actor(sub=f"t-{school['school_id']}", role="school", org=school["school_id"])


def group(label, students=30, teachers=2, grade=5):
    return {"label": label, "grade": grade, "students": students, "teachers": teachers}
