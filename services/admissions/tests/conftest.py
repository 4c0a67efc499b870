from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from services.admissions.bookings import Bookings
from services.admissions.codes import OneTimeCodes
from services.admissions.repository import AdmissionsRepository
from services.admissions.settings import AdmissionsSettings
from services.kit import clock
from services.kit.config import Settings

NOW = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
SECRET = "test-secret-for-admissions"


class FakeVenues:
    """Venues' hold rules in memory (one lock stands in for the atomic update)."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def add(self, session_id: str, capacity: int, **extra: Any) -> dict[str, Any]:
        session = {"session_id": session_id, "venue_id": "ven_1", "title": "亲子观星",
                   "audience": "family", "status": "open", "capacity": capacity,
                   "seats_left": capacity, "starts_at": "2026-07-10T02:00:00.000000Z",
                   "ends_at": "2026-07-10T04:00:00.000000Z", "price_fen": 0,
                   "prices_fen": {"adult": 3000, "child": 1500, "student": 1000},
                   "cancel_cutoff_hours": 24, "timezone": "Asia/Shanghai",
                   "max_people_per_booking": 6, "households_may_book_again": False,
                   "max_seats_per_party": None, "venue": {"name": "天文馆"},
                   "holds": {}, "per_party": {}, **extra}
        self.sessions[session_id] = session
        return session

    def get_session(self, session_id: str) -> dict[str, Any]:
        return dict(self.sessions[session_id])

    def hold(self, session_id: str, claim_id: str, party: str, seats: int) -> dict[str, Any]:
        with self.lock:
            s = self.sessions[session_id]
            if claim_id in s["holds"]:
                return {"ok": True, "seats": seats, "seats_left": s["seats_left"],
                        "reason": None}
            limit = s["max_seats_per_party"]
            if limit is not None and s["per_party"].get(party, 0) + seats > limit:
                return {"ok": False, "reason": "over_school_limit", "seats": seats,
                        "seats_left": s["seats_left"]}
            if s["seats_left"] < seats:
                return {"ok": False, "reason": "full", "seats": seats,
                        "seats_left": s["seats_left"]}
            s["holds"][claim_id] = (party, seats)
            s["per_party"][party] = s["per_party"].get(party, 0) + seats
            s["seats_left"] -= seats
            return {"ok": True, "seats": seats, "seats_left": s["seats_left"], "reason": None}

    def release(self, session_id: str, claim_id: str) -> dict[str, Any]:
        with self.lock:
            s = self.sessions[session_id]
            held = s["holds"].pop(claim_id, None)
            if held is None:
                return {"released": 0, "seats_left": s["seats_left"]}
            s["per_party"][held[0]] -= held[1]
            s["seats_left"] += held[1]
            return {"released": held[1], "seats_left": s["seats_left"]}


@pytest.fixture()
def now():
    class Clock:
        value = NOW

        def set(self, when: datetime) -> None:
            Clock.value = when

    clock.set_clock(lambda: Clock.value)
    yield Clock()
    clock.set_clock(None)


@pytest.fixture()
def settings() -> AdmissionsSettings:
    return AdmissionsSettings(public_url="https://kepu.example")


@pytest.fixture()
def repo(db, now):
    repository = AdmissionsRepository(db, Settings())
    repository.ensure_indexes()
    return repository


@pytest.fixture()
def venues() -> FakeVenues:
    return FakeVenues()


@pytest.fixture()
def desk(repo, venues, settings) -> Bookings:
    return Bookings(repo.db.bookings, repo.once, venues, SECRET, settings)


@pytest.fixture()
def codes(repo, settings) -> OneTimeCodes:
    return OneTimeCodes(repo.db.codes, SECRET, settings)


def sent_codes(repo) -> list[str]:
    """The codes staged for SMS, newest last."""
    found = []
    for doc in repo.db.codes.find():
        for _, env in sorted((doc.get("outbox") or {}).items()):
            found.append(env["data"]["code"])
    return found
