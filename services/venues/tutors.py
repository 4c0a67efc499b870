"""Science tutors (校外科技辅导员) a venue sends into schools, and their vetting.

A tutor is bookable on a day while the vetting record (`certified_until`, inclusive) still
covers that day in the venue's time zone; booking asks `get_tutor(id, on=visit_day)`.
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ReturnDocument
from pymongo.collection import Collection

from services.kit import clock
from services.kit.errors import NotFound, validation_error
from services.kit.ids import new_id
from services.kit.outbox import add_events, event, with_events
from services.venues.access import may_read_tutors, require_manager

HIDDEN = {"outbox": 0}


def today(timezone: str) -> date:
    return clock.now().astimezone(ZoneInfo(timezone)).date()


def view(doc: dict[str, Any], on: date | None = None) -> dict[str, Any]:
    """A tutor as `contracts.venues.TutorView`; bookable on `on` (default: today)."""
    day = on or today(doc.get("timezone") or "Asia/Shanghai")
    return {"tutor_id": doc["_id"], "venue_id": doc["venue_id"], "name": doc["name"],
            "level": doc["level"], "subjects": list(doc["subjects"]),
            "certified_until": doc["certified_until"],
            "bookable": date.fromisoformat(doc["certified_until"]) >= day,
            "created_at": doc.get("created_at")}


def _event_data(doc: dict[str, Any]) -> dict[str, Any]:
    return {**view(doc), "certified_until": date.fromisoformat(doc["certified_until"])}


class Tutors:
    def __init__(self, tutors: Collection) -> None:
        self.tutors = tutors

    def register(self, venue: dict[str, Any], data: dict[str, Any],
                 actor: dict[str, Any] | None) -> dict[str, Any]:
        require_manager(actor, venue["_id"])
        tutor_id = new_id("tut")
        created = clock.stamp()
        doc = {"_id": tutor_id, "tutor_id": tutor_id, "venue_id": venue["_id"],
               "name": data["name"], "level": data["level"], "subjects": list(data["subjects"]),
               "certified_until": data["certified_until"].isoformat(),
               "timezone": venue.get("timezone") or "Asia/Shanghai",
               "created_at": created,
               "sort_key": f"t{created}|{tutor_id}"}  # not date-like: see sessions.sort_key
        self.tutors.insert_one(with_events(doc, event("venues.tutor_registered",
                                                      _event_data(doc))))
        return view(doc)

    def get(self, tutor_id: str, on: str | None = None) -> dict[str, Any]:
        doc = self.tutors.find_one({"_id": tutor_id}, HIDDEN)
        if doc is None:
            raise NotFound(f"tutor {tutor_id} not found", code="tutor-not-found")
        day = None
        if on is not None:
            try:
                day = date.fromisoformat(on)
            except (TypeError, ValueError):
                raise validation_error("on", "must be a date, YYYY-MM-DD") from None
        return view(doc, day)

    def change(self, venue_id: str, tutor_id: str, change: dict[str, Any],
               actor: dict[str, Any] | None) -> dict[str, Any]:
        doc = self.tutors.find_one({"_id": tutor_id, "venue_id": venue_id}, HIDDEN)
        if doc is None:
            raise NotFound(f"tutor {tutor_id} not found at {venue_id}", code="tutor-not-found")
        require_manager(actor, venue_id)
        sets = {k: v for k, v in change.items() if k != "certified_until"}
        if "certified_until" in change:
            sets["certified_until"] = change["certified_until"].isoformat()
        after = {**doc, **sets}
        done = self.tutors.find_one_and_update(
            {"_id": tutor_id}, add_events({"$set": sets},
                                          event("venues.tutor_updated", _event_data(after))),
            projection=HIDDEN, return_document=ReturnDocument.AFTER)
        return view(done)

    def of_venue(self, venue_id: str, actor: dict[str, Any] | None, limit: int = 50,
             cursor: str | None = None) -> dict[str, Any]:
        """A venue's tutors, oldest first, a page at a time."""
        may_read_tutors(actor, venue_id)
        f: dict[str, Any] = {"venue_id": venue_id}
        if cursor:
            try:
                f["sort_key"] = {"$gt": base64.urlsafe_b64decode(cursor.encode()).decode()}
            except ValueError:
                raise validation_error("cursor", "not a cursor this list gave out") from None
        docs = list(self.tutors.find(f, HIDDEN).sort("sort_key", 1).limit(limit + 1))
        more = len(docs) > limit
        docs = docs[:limit]
        next_cursor = (base64.urlsafe_b64encode(docs[-1]["sort_key"].encode()).decode()
                       if more else None)
        return {"items": [view(d) for d in docs], "next_cursor": next_cursor}
