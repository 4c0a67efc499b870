"""Teacher training: school staff book individual seats, the venue sees who comes.

Each attendee is a booking of one seat whose party is the school (so a per-school limit
on the session holds, as for claims) and whose household is a digest of the school and
the attendee's name (so one person is not booked twice). Staff are signed in, so a seat
is confirmed at once; a full session puts the attendee on the waitlist.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pymongo.collection import Collection

from services.admissions.bookings import Bookings, check_open, view
from services.admissions.passes import mask_mobile
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden
from services.kit.pages import page


def attendee_key(school_id: str, name: str) -> str:
    digest = hashlib.sha256(f"{school_id}|{name.strip().casefold()}".encode()).hexdigest()
    return f"tr_{digest[:32]}"


class Training:
    def __init__(self, bookings: Bookings, schools: Collection) -> None:
        self.bookings = bookings
        self.schools = schools

    def school_name(self, school_id: str) -> str | None:
        doc = self.schools.find_one({"_id": school_id})
        return doc.get("name") if doc else None

    def book(self, actor: Actor, session_id: str, attendees: list[dict[str, Any]],
             request_key: str | None = None) -> dict[str, Any]:
        """Seats for named staff of the caller's school: each confirmed, waitlisted or
        refused (already booked, over the school's limit)."""
        school_id = actor.org_as("school")
        batch, _ = self.bookings.once.new_id("training-booking", "trn", school_id, request_key,
                                             session_id, attendees)
        session = self.bookings.venues.get_session(session_id)
        check_open(session, "teachers")
        name = self.school_name(school_id)
        answers = []
        for index, person in enumerate(attendees):
            doc = self.bookings._new(
                f"{batch}-{index}", session, "teachers", attendee_key(school_id, person["name"]),
                school_id, adults=1, children=0, attendee=person["name"],
                subject=person.get("subject"), school_id=school_id, school_name=name,
                mobile=person.get("mobile"), mobile_masked=mask_mobile(person.get("mobile")),
                language="zh-CN", booked_by=actor.name)
            try:
                answers.append(view(self.bookings._seat(doc, session, confirm=True)))
            except Conflict as refused:
                answers.append({"attendee": person["name"], "status": "refused",
                                "reason": refused.code})
        return {"session_id": session_id, "bookings": answers}

    def cancel(self, actor: Actor, booking_id: str) -> dict[str, Any]:
        doc = self.bookings.document(booking_id)
        if doc["audience"] != "teachers" or not actor.owns(doc["school_id"]):
            raise Forbidden("only the booking school's staff may cancel this seat")
        return self.bookings.cancel(doc, "cancelled by the school")

    def of_school(self, actor: Actor, limit: int, cursor: str | None) -> dict[str, Any]:
        school_id = actor.org_as("school")
        rows, next_cursor = page(self.bookings.bookings, {"audience": "teachers",
                                                          "school_id": school_id},
                                 limit, cursor, {"outbox": 0, "mobile": 0}, key="sort_key")
        return {"items": [view(r) for r in rows], "next_cursor": next_cursor}


def register(bookings: Collection, actor: Actor, session: dict[str, Any], limit: int,
             cursor: str | None) -> dict[str, Any]:
    """The venue's register of a session: who is booked (schools, names, masked mobiles)."""
    if not actor.owns(session["venue_id"]) or actor.role not in ("venue", "admin"):
        raise Forbidden("only the session's venue sees its register")
    rows, next_cursor = page(bookings, {"session_id": session["session_id"],
                                        "status": {"$in": ["confirmed", "waitlisted"]}},
                             limit, cursor, {"outbox": 0, "mobile": 0}, key="sort_key")
    return {"session_id": session["session_id"], "items": [view(r) for r in rows],
            "next_cursor": next_cursor}
