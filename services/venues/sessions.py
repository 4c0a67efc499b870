"""Sessions: publishing one or a series, changing, cancelling, and how a session reads.

A session document carries what the catalogue filters on at its top level (`district`,
`grade_min`/`grade_max`, `sort_key`, `end_key`) next to a snapshot
of its venue, and its seat counter and holds (see `holds`). Changes that others must hear
about stage their event in the same write (`services.kit.outbox`).

`sort_key` is `kit.pages.sort_key(starts_at, session_id)` (time order, unique: the
catalogue's sort and cursor) and `end_key` is `kit.pages.sort_key(ends_at)`: plain strings
on both servers, compared with `pages.sort_key(stamp)` bounds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection

from services.contracts.venues import PERSON_CATEGORIES, session_errors
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Conflict, NotFound, ValidationFailed
from services.kit.outbox import add_events, event, with_events
from services.kit.pages import sort_key
from services.kit.request_keys import RequestKeys, insert_once
from services.venues.access import require_manager
from services.venues.series import Series, check_occurrences, occurrence_id, occurrences

HIDDEN = {"outbox": 0, "holds": 0, "per_school": 0}
EDITABLE = ("title", "description", "what_to_bring", "cancel_cutoff_hours",
            "max_seats_per_school", "min_teachers_per_students", "window_closes_at")
RULED = ("starts_at", "ends_at", "grades", "capacity", "max_seats_per_school", "claim_policy",
         "window_closes_at")
ATTEMPTS = 20


def status_of(doc: dict[str, Any], now: str) -> str:
    """open, started, past or cancelled: stored as open/cancelled, the rest from the clock."""
    if doc["status"] == "cancelled":
        return "cancelled"
    if doc["ends_at"] <= now:
        return "past"
    if doc["starts_at"] <= now:
        return "started"
    return "open"


def view(doc: dict[str, Any], now: str | None = None,
         distance_km: float | None = None) -> dict[str, Any]:
    """A session as callers see it (`contracts.venues.SessionView`)."""
    keys = ("session_id", "series_id", "venue_id", "title", "description", "category",
            "audience", "grades", "starts_at", "ends_at", "capacity", "seats_left",
            "price_fen", "claim_policy", "window_closes_at", "max_seats_per_school",
            "min_teachers_per_students", "cancel_cutoff_hours", "what_to_bring", "timezone",
            "venue", "cancel_reason", "created_at", "max_people_per_booking", "version")
    out = {key: doc.get(key) for key in keys}
    out["prices_fen"] = prices_of(doc)
    out["households_may_book_again"] = bool(doc.get("households_may_book_again"))
    # on a family session the hold's per-party limit is the household's
    family = doc.get("audience") == "family"
    out["max_seats_per_household"] = doc.get("max_seats_per_school") if family else None
    if family:
        out["max_seats_per_school"] = None
    out["status"] = status_of(doc, now or clock.stamp())
    if distance_km is not None:
        out["distance_km"] = distance_km
    return out


def prices_of(doc: dict[str, Any]) -> dict[str, int]:
    """Each person category's price in fen; a category the venue left out costs price_fen."""
    given = doc.get("prices_fen") or {}
    return {category: given.get(category) if given.get(category) is not None
            else doc["price_fen"] for category in PERSON_CATEGORIES}


def venue_snapshot(venue: dict[str, Any]) -> dict[str, Any]:
    """What a session shows of its venue, kept current by venue edits."""
    return {"name": venue["name"], "kind": venue["kind"], "address": venue["address"],
            "district": venue["district"], "district_id": venue.get("district_id"),
            "location": dict(venue["location"])}


def new_session(session_id: str, draft: dict[str, Any], venue: dict[str, Any], starts_at: str,
                ends_at: str, window_closes_at: str | None, series_id: str | None,
                published: bool) -> dict[str, Any]:
    low, high = draft["grades"]
    return {
        "_id": session_id, "session_id": session_id, "series_id": series_id,
        "venue_id": venue["_id"], "title": draft["title"],
        "description": draft.get("description"), "category": draft["category"],
        "audience": draft["audience"], "grades": [low, high], "grade_min": low, "grade_max": high,
        "starts_at": starts_at, "ends_at": ends_at, "sort_key": sort_key(starts_at, session_id),
        "end_key": sort_key(ends_at),
        "capacity": draft["capacity"], "seats_left": draft["capacity"], "held": 0,
        "holds": {}, "per_school": {}, "price_fen": draft["price_fen"],
        "claim_policy": draft["claim_policy"], "window_closes_at": window_closes_at,
        # the hold's per-party limit: a school's, or on a family session a household's
        "max_seats_per_school": (draft.get("max_seats_per_household")
                                 if draft["audience"] == "family"
                                 else draft.get("max_seats_per_school")),
        "prices_fen": draft.get("prices_fen"),
        "max_people_per_booking": draft.get("max_people_per_booking"),
        "households_may_book_again": bool(draft.get("households_may_book_again")),
        "min_teachers_per_students": draft.get("min_teachers_per_students"),
        "cancel_cutoff_hours": draft["cancel_cutoff_hours"],
        "what_to_bring": draft.get("what_to_bring"), "status": "open",
        "cancel_reason": None, "published": published,
        "timezone": venue.get("timezone") or "Asia/Shanghai",
        "venue": venue_snapshot(venue), "district": venue["district"],
        "district_id": venue.get("district_id"),
        "created_at": clock.stamp(), "version": 1,
    }


def published_event(doc: dict[str, Any]) -> dict[str, Any]:
    return event("venues.session_published", doc)


class Sessions:
    def __init__(self, sessions: Collection, series: Series, once: RequestKeys) -> None:
        self.sessions = sessions
        self.series = series
        self.once = once

    # -- reading ---------------------------------------------------------------------------
    def document(self, session_id: str) -> dict[str, Any]:
        doc = self.sessions.find_one({"_id": session_id, "published": True}, HIDDEN)
        if doc is None:
            raise NotFound(f"session {session_id} not found", code="session-not-found")
        return doc

    def get(self, session_id: str) -> dict[str, Any]:
        return view(self.document(session_id))

    def get_many(self, session_ids: list[str]) -> list[dict[str, Any]]:
        """The sessions that exist among `session_ids`, in the order asked."""
        if not isinstance(session_ids, list) or len(session_ids) > 500:
            raise ValidationFailed("session_ids: a list of at most 500 ids",
                                   {"session_ids": ["must be a list of at most 500 ids"]})
        found = {d["_id"]: d for d in self.sessions.find(
            {"_id": {"$in": list(dict.fromkeys(session_ids))}, "published": True}, HIDDEN)}
        now = clock.stamp()
        return [view(found[sid], now) for sid in dict.fromkeys(session_ids) if sid in found]

    # -- publishing ------------------------------------------------------------------------
    def publish(self, venue: dict[str, Any], draft: dict[str, Any], actor: Actor | None,
                request_key: str | None = None) -> dict[str, Any]:
        """One session, or every occurrence of a series (all or nothing).

        With a `request_key`, a retry answers what the first attempt published (`once`).
        """
        require_manager(actor, venue["_id"])
        if draft.get("repeat"):
            return self._publish_series(venue, draft, request_key)
        self._check(draft, clock.now())
        session_id, retried = self.once.new_id("session", "ses", venue["_id"], request_key,
                                               venue["_id"], draft)
        if retried and (earlier := self._any(session_id)) is not None:
            return view(earlier)
        doc = new_session(session_id, draft, venue, draft["starts_at"], draft["ends_at"],
                          draft.get("window_closes_at"), None, True)
        earlier = insert_once(self.sessions, with_events(doc, published_event(doc)), self._any)
        return view(earlier or doc)

    def _publish_series(self, venue: dict[str, Any], draft: dict[str, Any],
                        request_key: str | None) -> dict[str, Any]:
        found = occurrences(draft, venue.get("timezone") or "Asia/Shanghai")
        check_occurrences(draft, found, clock.now())
        series_id, retried = self.once.new_id("series", "ser", venue["_id"], request_key,
                                              venue["_id"], draft)
        if retried and self.series.finish(series_id):
            return self._series(series_id)
        docs = [new_session(occurrence_id(series_id, i), draft, venue, o.starts_at, o.ends_at,
                            o.window_closes_at, series_id, False) for i, o in enumerate(found)]
        self.series.publish(series_id, venue["_id"], docs, [published_event(d) for d in docs])
        if retried:  # another attempt may have written some of them: answer what is stored
            return self._series(series_id)
        stamp = clock.stamp()
        return {"series_id": series_id, "sessions": [view(d, stamp) for d in docs]}

    def _series(self, series_id: str) -> dict[str, Any]:
        stamp = clock.stamp()
        docs = self.sessions.find({"series_id": series_id, "published": True},
                                  HIDDEN).sort("sort_key", 1)
        return {"series_id": series_id, "sessions": [view(d, stamp) for d in docs]}

    def _any(self, session_id: str) -> dict[str, Any] | None:
        return self.sessions.find_one({"_id": session_id}, HIDDEN)

    @staticmethod
    def _check(values: dict[str, Any], now: datetime) -> None:
        errors = session_errors(values, now)
        if errors:
            raise ValidationFailed(f"invalid fields: {', '.join(sorted(errors))}", errors)

    # -- changing --------------------------------------------------------------------------
    def change(self, session_id: str, change: dict[str, Any],
               actor: Actor | None) -> dict[str, Any]:
        """Reschedule, resize or edit; conditional on the version read, retried on a race.

        A capacity change is also conditional on the seats as read, so it never drops below
        seats held by a hold that lands in between, and its event tells the true seats left.
        """
        for _ in range(ATTEMPTS):
            doc = self.document(session_id)
            require_manager(actor, doc["venue_id"])
            now = clock.now()
            state = status_of(doc, clock.stamp(now))
            if state != "open":
                raise Conflict(f"session {session_id} is {state}; it can no longer change",
                               code=f"session-{state}")
            update, events = self._plan(doc, change, now)
            if not update:
                return view(doc)
            condition: dict[str, Any] = {"_id": session_id, "version": doc["version"]}
            if "capacity" in change:  # exact seats in the event; a hold in between: again
                condition.update(held={"$lte": change["capacity"]},
                                 seats_left=doc["seats_left"])
            update.setdefault("$inc", {})["version"] = 1
            done = self.sessions.find_one_and_update(
                condition, add_events(update, *events), projection=HIDDEN,
                return_document=ReturnDocument.AFTER)
            if done is not None:
                return view(done)
            fresh = self.document(session_id)
            if "capacity" in change and fresh.get("held", 0) > change["capacity"]:
                raise self._below_held(fresh)
        raise Conflict(f"session {session_id} keeps changing; try again", code="busy")

    @staticmethod
    def _below_held(doc: dict[str, Any]) -> Conflict:
        held = doc.get("held", 0)
        return Conflict(f"capacity cannot drop below the {held} seats already held",
                        {"capacity": [f"must be at least {held}, the seats already held"]},
                        code="capacity-below-held")

    def _plan(self, doc: dict[str, Any], change: dict[str, Any],
              now: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The update and events a change makes to `doc`; refuses a change that breaks a rule."""
        if "window_closes_at" in change and doc.get("window_closes_at") and \
                doc["window_closes_at"] <= clock.stamp(now):
            raise Conflict("the claim window has closed and the seats were allocated",
                           {"window_closes_at": ["the window has already closed"]},
                           code="window-closed")
        merged = {**doc, **change}
        errors = session_errors({k: merged.get(k) for k in RULED}, now)
        if "window_closes_at" not in change:  # a window that closed already may stay closed
            kept = [m for m in errors.pop("window_closes_at", []) if "future" not in m]
            if kept:
                errors["window_closes_at"] = kept
        if "max_seats_per_school" in errors and "max_seats_per_school" not in change:
            errors.pop("max_seats_per_school")
            errors["capacity"] = [f"must not be below max_seats_per_school "
                                  f"({doc['max_seats_per_school']})"]
        if errors:
            raise ValidationFailed(f"invalid fields: {', '.join(sorted(errors))}", errors)
        if "capacity" in change and change["capacity"] < doc.get("held", 0):
            raise self._below_held(doc)
        sets: dict[str, Any] = {}
        update: dict[str, Any] = {}
        events = []
        edited = [k for k in EDITABLE if k in change and change[k] != doc.get(k)]
        for key in edited:
            sets[key] = change[key]
        if merged["starts_at"] != doc["starts_at"] or merged["ends_at"] != doc["ends_at"]:
            sets.update(starts_at=merged["starts_at"], ends_at=merged["ends_at"],
                        sort_key=sort_key(merged["starts_at"], doc["_id"]),
                        end_key=sort_key(merged["ends_at"]))
            events.append(event("venues.session_rescheduled", {
                "session_id": doc["_id"], "venue_id": doc["venue_id"],
                "previous_starts_at": doc["starts_at"], "previous_ends_at": doc["ends_at"],
                "starts_at": merged["starts_at"], "ends_at": merged["ends_at"],
                "timezone": doc["timezone"]}))
        if "capacity" in change and change["capacity"] != doc["capacity"]:
            delta = change["capacity"] - doc["capacity"]
            sets["capacity"] = change["capacity"]
            update["$inc"] = {"seats_left": delta}
            events.append(event("venues.capacity_changed", {
                "session_id": doc["_id"], "venue_id": doc["venue_id"],
                "capacity": change["capacity"], "seats_left": doc["seats_left"] + delta}))
        if edited:
            after = {**doc, **{k: change[k] for k in edited}}
            events.append(event("venues.session_updated", {**after, "changed": edited}))
        if sets:
            update["$set"] = sets
        return update, events

    def cancel(self, session_id: str, reason: str,
               actor: Actor | None) -> dict[str, Any]:
        """Cancel once: a repeat answers the cancelled session and announces nothing."""
        doc = self.document(session_id)
        require_manager(actor, doc["venue_id"])
        if doc["status"] == "cancelled":
            return view(doc)
        now = clock.stamp()
        if doc["starts_at"] <= now:
            raise Conflict(f"session {session_id} has started; it can no longer be cancelled",
                           code=f"session-{status_of(doc, now)}")
        announced = event("venues.session_cancelled", {
            "session_id": session_id, "venue_id": doc["venue_id"], "reason": reason,
            "starts_at": doc["starts_at"]})
        done = self.sessions.find_one_and_update(
            {"_id": session_id, "status": "open"},
            add_events({"$set": {"status": "cancelled", "cancel_reason": reason,
                                 "cancelled_at": now}, "$inc": {"version": 1}}, announced),
            projection=HIDDEN, return_document=ReturnDocument.AFTER)
        return view(done if done is not None else self.document(session_id))

    def follow_venue(self, venue: dict[str, Any]) -> int:
        """Copy a venue's edited name, address and location onto its sessions to come."""
        snapshot = venue_snapshot(venue)
        result = self.sessions.update_many(
            {"venue_id": venue["_id"], "end_key": {"$gt": sort_key(clock.stamp())}},
            {"$set": {"venue": snapshot}})
        return result.modified_count
