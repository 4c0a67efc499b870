"""Science tutors (校外科技辅导员) a venue sends into schools, and their vetting.

A tutor is bookable on a day while the vetting record (`certified_until`, inclusive) still
covers that day in the venue's time zone; booking asks `get_tutor(id, on=visit_day)`.
A venue's tutors list oldest first, paged by `sort_key` = `kit.pages.sort_key(created_at,
tutor_id)`; the cursor is that key.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import ReturnDocument
from pymongo.collection import Collection

from services.kit import clock, pages
from services.kit.actor import Actor
from services.kit.errors import NotFound, validation_error
from services.kit.outbox import add_events, event, with_events
from services.kit.request_keys import RequestKeys, insert_once
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
    def __init__(self, tutors: Collection, once: RequestKeys) -> None:
        self.tutors = tutors
        self.once = once

    def register(self, venue: dict[str, Any], data: dict[str, Any], actor: Actor | None,
                 request_key: str | None = None) -> dict[str, Any]:
        """A new tutor; a retry with the same `request_key` answers the first one (`once`)."""
        require_manager(actor, venue["_id"])
        tutor_id, retried = self.once.new_id("tutor", "tut", venue["_id"], request_key,
                                             venue["_id"], data)
        if retried and (earlier := self._any(tutor_id)) is not None:
            return view(earlier)
        created = clock.stamp()
        doc = {"_id": tutor_id, "tutor_id": tutor_id, "venue_id": venue["_id"],
               "name": data["name"], "level": data["level"], "subjects": list(data["subjects"]),
               "certified_until": data["certified_until"].isoformat(),
               "timezone": venue.get("timezone") or "Asia/Shanghai",
               "created_at": created, "sort_key": pages.sort_key(created, tutor_id)}
        earlier = insert_once(self.tutors, with_events(
            doc, event("venues.tutor_registered", _event_data(doc))), self._any)
        return view(earlier or doc)

    def _any(self, tutor_id: str) -> dict[str, Any] | None:
        return self.tutors.find_one({"_id": tutor_id}, HIDDEN)

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
               actor: Actor | None) -> dict[str, Any]:
        require_manager(actor, venue_id)
        doc = self.tutors.find_one({"_id": tutor_id, "venue_id": venue_id}, HIDDEN)
        if doc is None:
            raise NotFound(f"tutor {tutor_id} not found at {venue_id}", code="tutor-not-found")
        sets = {k: v for k, v in change.items() if k != "certified_until"}
        if "certified_until" in change:
            sets["certified_until"] = change["certified_until"].isoformat()
        after = {**doc, **sets}
        done = self.tutors.find_one_and_update(
            {"_id": tutor_id}, add_events({"$set": sets},
                                          event("venues.tutor_updated", _event_data(after))),
            projection=HIDDEN, return_document=ReturnDocument.AFTER)
        return view(done)

    def of_venue(self, venue_id: str, actor: Actor | None, limit: int = 50,
                 cursor: str | None = None) -> dict[str, Any]:
        """A venue's tutors, oldest first, a page at a time (`kit.pages`)."""
        may_read_tutors(actor, venue_id)
        if cursor is not None and not cursor.startswith("@"):
            raise validation_error("cursor", "not a cursor this list gave out")
        docs, next_cursor = pages.page(self.tutors, {"venue_id": venue_id}, limit, cursor,
                                       HIDDEN, key="sort_key")
        return {"items": [view(d) for d in docs], "next_cursor": next_cursor}
