"""Seat holds: the one place that decides whether a session still has room.

A hold is one atomic conditional update on the session document, keyed by the claim id:

    holds.<claim_id>       = {seats, school_id, held_at, by (the replica that took it)}
    per_school.<school_id> += seats     (checked against max_seats_per_school)
    held                   += seats
    seats_left             -= seats     (condition: seats_left >= seats)

so `seats_left == capacity - held` and `held == sum(holds)` hold after every write, a
retried hold for the same claim cannot count twice, and two holds racing for the last seats
cannot both win. The session is read first to learn its per-school limit and the school's
seats so far (the update requires both unchanged) and to name the reason of a refusal.

The party is whoever the per-party limit counts: a school for claims and training seats,
a household (admissions' digest of its verified mobile, `hh_…`) on family sessions, where
`max_seats_per_school` stores the venue's `max_seats_per_household`. The map keeps its
name (`per_school`) so existing sessions and school claims read as before.

A caller that checked a claim against its copy of the session (booking keeps sessions for
a while) passes the `version` it checked (`expected_version`): the hold then also requires
the session unchanged since (every edit and cancellation adds 1 to `version`; holds do not),
and refuses with `stale` otherwise, so the caller reads the session again, checks again and
asks again. Callers that pass no version are held on the session's current state as before.

Venues does not judge claim policy: booking asks for a window session's seats when it
allocates, after the window closed. What venues refuses is what no policy may break: a
full, cancelled, started or unknown session, and a school over its limit.
"""

from __future__ import annotations

import re
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection

from services.contracts.venues import MAX_CAPACITY
from services.kit import clock
from services.kit.errors import Conflict, NotFound, Unavailable, validation_error
from services.kit.health import INSTANCE

KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # map keys: no dots, no dollars
ATTEMPTS = 20

STATE = {"_id": 1, "published": 1, "status": 1, "starts_at": 1, "capacity": 1,
         "seats_left": 1, "held": 1, "max_seats_per_school": 1, "version": 1}
SEAT_FIELDS = {**STATE, "holds": 1, "per_school": 1}


def claim_fields(claim_id: str, school_id: str | None = None) -> dict[str, int]:
    """The session's state and one claim's (and school's) entries, not the whole maps."""
    wanted = {**STATE, f"holds.{claim_id}": 1}
    if school_id is not None:
        wanted[f"per_school.{school_id}"] = 1
    return wanted


def entry(doc: dict[str, Any], field: str, key: str) -> Any:
    """`doc[field][key]`, whether the server nested a dotted projection or not."""
    if f"{field}.{key}" in doc:
        return doc[f"{field}.{key}"]
    return (doc.get(field) or {}).get(key)


def _key(name: str, value: Any) -> str:
    if not isinstance(value, str) or not KEY.match(value):
        raise validation_error(name, "must be 1-64 letters, digits, _ or -")
    return value


def _answer(ok: bool, seats: int, seats_left: int, reason: str | None = None,
            repeated: bool = False) -> dict[str, Any]:
    return {"ok": ok, "reason": reason, "seats": seats, "seats_left": seats_left,
            "repeated": repeated}


FULL_KEPT = 10_000  # sessions remembered as full, per process; beyond it, forget them all


class Holds:
    def __init__(self, sessions: Collection) -> None:
        self.sessions = sessions
        # seats left when a hold on the session was last refused as full: a claim wanting
        # more is read first (one command for its refusal, not a failed write and a read)
        self.seen_full: dict[str, int] = {}

    def _remember(self, session_id: str, refusal: str | None, seats_left: int) -> None:
        if refusal != "full":
            self.seen_full.pop(session_id, None)
            return
        if len(self.seen_full) >= FULL_KEPT:
            self.seen_full.clear()
        self.seen_full[session_id] = seats_left

    def _read(self, session_id: str, fields: dict[str, int]) -> dict[str, Any] | None:
        doc = self.sessions.find_one({"_id": session_id}, fields)
        return doc if doc is not None and doc.get("published") else None

    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int,
             expected_version: int | None = None) -> dict[str, Any]:
        """Hold `seats` for `claim_id`, or say why not; a repeat answers the same.

        `expected_version`: the session version the caller checked the claim against; a
        session changed since refuses as `stale` (a repeat of a hold still answers the hold).
        """
        _key("claim_id", claim_id)
        _key("school_id", school_id)
        if not isinstance(seats, int) or isinstance(seats, bool) or not 1 <= seats <= MAX_CAPACITY:
            raise validation_error("seats", f"must be a whole number from 1 to {MAX_CAPACITY}")
        if expected_version is not None and (not isinstance(expected_version, int)
                                             or isinstance(expected_version, bool)):
            raise validation_error("expected_version", "must be a whole number")
        same = {} if expected_version is None else {"version": expected_version}
        now = clock.stamp()
        held = {"seats": seats, "school_id": school_id, "held_at": now, "by": INSTANCE}
        taking = {"$set": {f"holds.{claim_id}": held},
                  "$inc": {"seats_left": -seats, "held": seats, f"per_school.{school_id}": seats}}
        # The common case in one write: a session without a per-school limit that has room.
        # A session last seen too full for this claim is read first instead: the write below
        # decides either way, so which comes first changes the commands, never the answer.
        if seats <= self.seen_full.get(session_id, seats):
            done = self.sessions.find_one_and_update(
                {"_id": session_id, "published": True, "status": "open",
                 "starts_at": {"$gt": now}, "seats_left": {"$gte": seats},
                 f"holds.{claim_id}": {"$exists": False}, "max_seats_per_school": None,
                 **same},
                taking, projection={"seats_left": 1}, return_document=ReturnDocument.AFTER)
            if done is not None:
                return _answer(True, seats, done["seats_left"])
        for _ in range(ATTEMPTS):
            doc = self._read(session_id, claim_fields(claim_id, school_id))
            if doc is None:
                return _answer(False, seats, 0, "not_found")
            existing = entry(doc, "holds", claim_id)
            if existing is not None:
                if existing["seats"] != seats or existing["school_id"] != school_id:
                    raise Conflict(
                        f"claim {claim_id} already holds {existing['seats']} seats for "
                        f"{existing['school_id']}; release it before holding again",
                        {"seats": [f"{claim_id} holds {existing['seats']}"]},
                        code="hold-differs")
                return _answer(True, seats, doc["seats_left"], repeated=True)
            now = clock.stamp()
            refusal = self._refusal(doc, school_id, seats, now, expected_version)
            self._remember(session_id, refusal, doc["seats_left"])
            if refusal:
                return _answer(False, seats, doc["seats_left"], refusal)
            school_seats = entry(doc, "per_school", school_id)
            condition: dict[str, Any] = {
                "_id": session_id, "published": True, "status": "open",
                "starts_at": {"$gt": now}, "seats_left": {"$gte": seats},
                f"holds.{claim_id}": {"$exists": False},
                "max_seats_per_school": doc.get("max_seats_per_school"),
                # the school's count as read (checked against the limit above), not a range
                # under $or: nx-27017 drops sibling range conditions when $or is present
                # (kit/mongo.py)
                f"per_school.{school_id}": ({"$exists": False} if school_seats is None
                                            else school_seats),
                **same,
            }
            held["held_at"] = now
            done = self.sessions.find_one_and_update(
                condition, taking, projection={"seats_left": 1},
                return_document=ReturnDocument.AFTER)
            if done is not None:
                return _answer(True, seats, done["seats_left"])
            # Something changed between the read and the write: look again.
        raise Unavailable(f"session {session_id} is too busy; try again", code="hold-contention")

    @staticmethod
    def _refusal(doc: dict[str, Any], school_id: str, seats: int, now: str,
                 expected_version: int | None = None) -> str | None:
        """Why no hold: a cancelled or started session first (no fresher check changes
        that), then a session changed since the caller's checks, then the seats."""
        if doc["status"] == "cancelled":
            return "cancelled"
        if doc["starts_at"] <= now:
            return "closed"
        if expected_version is not None and doc.get("version") != expected_version:
            return "stale"
        limit = doc.get("max_seats_per_school")
        if limit is not None and (entry(doc, "per_school", school_id) or 0) + seats > limit:
            return "over_school_limit"
        if doc["seats_left"] < seats:
            return "full"
        return None

    def release(self, session_id: str, claim_id: str) -> dict[str, Any]:
        """Give back what `claim_id` holds; a repeat releases 0."""
        _key("claim_id", claim_id)
        for _ in range(ATTEMPTS):
            doc = self.sessions.find_one({"_id": session_id}, claim_fields(claim_id))
            if doc is None:
                raise NotFound(f"session {session_id} not found", code="session-not-found")
            held = entry(doc, "holds", claim_id)
            if held is None:
                return {"released": 0, "seats_left": doc["seats_left"]}
            seats, school = held["seats"], held["school_id"]
            done = self.sessions.find_one_and_update(
                {"_id": session_id, f"holds.{claim_id}.seats": seats,
                 f"holds.{claim_id}.school_id": school},
                {"$unset": {f"holds.{claim_id}": ""},
                 "$inc": {"seats_left": seats, "held": -seats, f"per_school.{school}": -seats}},
                projection={"seats_left": 1}, return_document=ReturnDocument.AFTER)
            if done is not None:
                return {"released": seats, "seats_left": done["seats_left"]}
        raise Unavailable(f"session {session_id} is too busy; try again", code="hold-contention")

    def seats(self, session_id: str) -> dict[str, Any]:
        """The counter and the holds it is made of, to check one against the other."""
        doc = self._read(session_id, SEAT_FIELDS)
        if doc is None:
            raise NotFound(f"session {session_id} not found", code="session-not-found")
        return {"session_id": session_id, "capacity": doc["capacity"],
                "seats_left": doc["seats_left"], "held": doc.get("held", 0),
                "holds": {claim: h["seats"] for claim, h in (doc.get("holds") or {}).items()},
                "per_school": {k: v for k, v in (doc.get("per_school") or {}).items() if v}}
