"""Booking's documents in MongoDB: schools, claims, batches, allocations, tutor visits.

Every status change is one conditional `find_one_and_update` on the claim (or visit)
document that also appends a history entry and stages the events others must hear about
(the outbox), so a status and its event are written together or not at all.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.booking.claims import history_entry, line_order
from services.kit import clock, pages
from services.kit.config import Settings
from services.kit.errors import NotFound
from services.kit.health import INSTANCE
from services.kit.migrations import DistrictDirectory, adopt_ids, names_without_ids
from services.kit.mongo import Repository
from services.kit.outbox import add_events, event, with_events
from services.kit.request_keys import RequestKeys

NO_OUTBOX = {"outbox": 0}


class BookingRepository(Repository):
    outbox_collections = ("schools", "claims", "allocations", "tutor_visits")

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        # Idempotency-Keys of claims, batches, tutor visits and schools, each kind apart.
        self.request_keys = RequestKeys(self.db.request_keys)
        # identity's districts, kept from `identity.district_registered` (kit.migrations)
        self.districts = DistrictDirectory(self.db.district_directory)

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        db = self.db
        self.request_keys.ensure_indexes()
        self.districts.ensure_indexes()
        db.schools.create_index("district")
        db.schools.create_index("district_id")
        db.schools.create_index("list_key")
        db.claims.create_index([("school_id", ASCENDING), ("list_key", ASCENDING)])
        db.claims.create_index([("venue_id", ASCENDING), ("list_key", ASCENDING)])
        db.claims.create_index("list_key")
        # a session's claims are tens to hundreds: its id alone narrows them, on MongoDB 7
        # as well as on nx-27017, which answers from single-field indexes only (kit/mongo.py)
        db.claims.create_index("session_id")
        db.claims.create_index([("status", ASCENDING), ("updated_at", ASCENDING)])
        db.claims.create_index([("school_id", ASCENDING), ("term", ASCENDING)])
        db.claims.create_index("release_pending")
        db.claims.create_index("batch_id")
        db.batches.create_index([("state", ASCENDING), ("lease_until", ASCENDING)])
        db.allocations.create_index([("state", ASCENDING), ("closes_at", ASCENDING)])
        db.tutor_visits.create_index([("school_id", ASCENDING), ("list_key", ASCENDING)])
        db.tutor_visits.create_index([("venue_id", ASCENDING), ("list_key", ASCENDING)])
        db.tutor_visits.create_index([("district", ASCENDING), ("list_key", ASCENDING)])
        db.tutor_visits.create_index([("district_id", ASCENDING), ("list_key", ASCENDING)])
        for doc in db.schools.find({"list_key": {"$exists": False}}, {"created_at": 1}):
            db.schools.update_one({"_id": doc["_id"]}, {"$set": {"list_key": pages.sort_key(
                doc.get("created_at", ""), doc["_id"])}})  # schools from before the list

    # -- schools ----------------------------------------------------------------------------
    def register_school(self, data: dict[str, Any], school_id: str) -> dict[str, Any]:
        """Insert the school under `school_id`; if it exists already, answer that one."""
        at = clock.stamp()
        school = {**data, "_id": school_id, "school_id": school_id, "created_at": at,
                  "list_key": pages.sort_key(at, school_id)}
        try:
            self.db.schools.insert_one(with_events(school,
                                                   event("booking.school_registered", school)))
        except DuplicateKeyError:
            return self.school(school_id)
        return school

    def find_school(self, school_id: str) -> dict[str, Any] | None:
        return self.db.schools.find_one({"_id": school_id}, NO_OUTBOX)

    def school(self, school_id: str) -> dict[str, Any]:
        doc = self.db.schools.find_one({"_id": school_id}, NO_OUTBOX)
        if doc is None:
            raise NotFound(f"school {school_id} not found", code="school-not-found")
        return doc

    def list_schools(self, scope: dict[str, Any], limit: int,
                     cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return pages.page(self.db.schools, scope, limit, cursor, NO_OUTBOX, key="list_key")

    # -- districts: names to ids (kit.migrations, docs/districts.md) ------------------------
    def district_names(self) -> set[str]:
        """District names of schools, claims and tutor visits not yet linked to an id."""
        return set().union(*(names_without_ids(self.db[c])
                             for c in ("schools", "claims", "tutor_visits")))

    def adopt_district_ids(self, mapping: dict[str, str]) -> dict[str, int]:
        """Link schools, claims and tutor visits named in `mapping` to their district ids.

        The directory learns the districts first, so a school registered right after the
        migration finds its district whether or not identity's event has arrived yet.
        """
        for name, district_id in mapping.items():
            self.districts.learn({"district_id": district_id, "name": name})
        return {c: adopt_ids(self.db[c], mapping) for c in ("schools", "claims", "tutor_visits")}

    def record_venue(self, venue: dict[str, Any]) -> None:
        """Booking's copy of the venue directory, kept from `venues.venue_registered` and
        `venues.venue_updated` (each carries the whole record)."""
        self.db.venue_directory.replace_one({"_id": venue["venue_id"]},
                                            {**venue, "_id": venue["venue_id"]}, upsert=True)

    def venue(self, venue_id: str) -> dict[str, Any] | None:
        return self.db.venue_directory.find_one({"_id": venue_id})

    def venues_by_id(self, venue_ids: set[str]) -> dict[str, dict[str, Any]]:
        if not venue_ids:
            return {}
        return {d["_id"]: d for d in self.db.venue_directory.find(
            {"_id": {"$in": sorted(venue_ids)}})}

    def school_facts(self, school_id: str, term: str) -> dict[str, int]:
        """What allocation weighs: confirmed visits and no-shows this term."""
        claims = self.db.claims
        return {
            "confirmed_visits": claims.count_documents(
                {"school_id": school_id, "term": term, "status": "confirmed"}),
            "no_shows": claims.count_documents(
                {"school_id": school_id, "term": term, "attendance.no_show": True}),
        }

    # -- claims -----------------------------------------------------------------------------
    def claim(self, claim_id: str) -> dict[str, Any]:
        doc = self.db.claims.find_one({"_id": claim_id}, NO_OUTBOX)
        if doc is None:
            raise NotFound(f"claim {claim_id} not found", code="claim-not-found")
        return doc

    def find_claim(self, claim_id: str) -> dict[str, Any] | None:
        return self.db.claims.find_one({"_id": claim_id}, NO_OUTBOX)

    def insert_new_claim(self, doc: dict[str, Any],
                         events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Insert a new claim; if the same id exists already, answer with that one."""
        doc.setdefault("served_by", INSTANCE)  # which replica took it (operations, scale-out)
        try:
            self.insert_claims([doc], {doc["_id"]: events} if events else None)
        except DuplicateKeyError:
            return self.claim(doc["_id"])
        return doc

    def insert_claims(self, docs: list[dict[str, Any]],
                      events: dict[str, list[dict[str, Any]]] | None = None) -> None:
        events = events or {}
        staged = [with_events(d, *events.get(d["_id"], [])) if events.get(d["_id"]) else d
                  for d in docs]
        if len(staged) == 1:
            self.db.claims.insert_one(staged[0])
        elif staged:
            self.db.claims.insert_many(staged, ordered=True)

    def transition(self, claim_id: str, from_statuses: tuple[str, ...], to_status: str,
                   actor: str, reason: str | None = None,
                   set_: dict[str, Any] | None = None, unset: tuple[str, ...] = (),
                   events: tuple[dict[str, Any], ...] = ()) -> dict[str, Any] | None:
        """Move a claim from one of `from_statuses` to `to_status`; None if it was not there."""
        key, entry = history_entry(to_status, actor, reason)
        update: dict[str, Any] = {"$set": {"status": to_status, "reason": reason,
                                           "updated_at": entry["at"], key: entry,
                                           **(set_ or {})}}
        if unset:
            update["$unset"] = {name: "" for name in unset}
        return self.db.claims.find_one_and_update(
            {"_id": claim_id, "status": {"$in": list(from_statuses)}},
            add_events(update, *events), projection=NO_OUTBOX,
            return_document=ReturnDocument.AFTER)

    def update_claim(self, claim_id: str, set_: dict[str, Any] | None = None,
                     unset: tuple[str, ...] = (), events: tuple[dict[str, Any], ...] = (),
                     only_if: dict[str, Any] | None = None) -> dict[str, Any] | None:
        update: dict[str, Any] = {"$set": {"updated_at": clock.stamp(), **(set_ or {})}}
        if unset:
            update["$unset"] = {name: "" for name in unset}
        return self.db.claims.find_one_and_update(
            {"_id": claim_id, **(only_if or {})}, add_events(update, *events),
            projection=NO_OUTBOX, return_document=ReturnDocument.AFTER)

    def claims_on_session(self, session_id: str, statuses: tuple[str, ...]) -> list[dict]:
        return list(self.db.claims.find({"session_id": session_id,
                                         "status": {"$in": list(statuses)}}, NO_OUTBOX))

    def waitlist(self, session_id: str) -> list[dict[str, Any]]:
        docs = self.claims_on_session(session_id, ("waitlisted",))
        return sorted(docs, key=line_order)

    def line(self, session_id: str) -> list[dict[str, Any]]:
        """A session's waitlist as `claims.place_in_line` counts it: ids and wait keys only
        (compared in Python, see `claims.line_order`)."""
        return list(self.db.claims.find({"session_id": session_id, "status": "waitlisted"},
                                        {"wait_key": 1}))

    def stale_holding(self, older_than: str, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.claims.find({"status": "holding", "updated_at": {"$lt": older_than},
                                         "batch_id": {"$exists": False}}, NO_OUTBOX)
                    .limit(limit))

    def pending_releases(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self.db.claims.find({"release_pending": True}, NO_OUTBOX).limit(limit))

    def list_claims(self, scope: dict[str, Any], limit: int,
                    cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return pages.page(self.db.claims, scope, limit, cursor, NO_OUTBOX, key="list_key",
                          newest_first=True)

    def reschedule_trips(self, session_id: str, starts_at: str, ends_at: str) -> int:
        return self.db.claims.update_many(
            {"session_id": session_id},
            {"$set": {"trip.starts_at": starts_at, "trip.ends_at": ends_at,
                      "updated_at": clock.stamp()}}).modified_count

    # -- batches ----------------------------------------------------------------------------
    def insert_batch(self, batch: dict[str, Any]) -> None:
        self.db.batches.insert_one(batch)

    def batch(self, batch_id: str) -> dict[str, Any]:
        doc = self.db.batches.find_one({"_id": batch_id})
        if doc is None:
            raise NotFound(f"batch {batch_id} not found", code="batch-not-found")
        return doc

    def find_batch(self, batch_id: str) -> dict[str, Any] | None:
        return self.db.batches.find_one({"_id": batch_id})

    def update_batch(self, batch_id: str, set_: dict[str, Any],
                     only_if: dict[str, Any] | None = None) -> dict[str, Any] | None:
        return self.db.batches.find_one_and_update({"_id": batch_id, **(only_if or {})},
                                                   {"$set": set_},
                                                   return_document=ReturnDocument.AFTER)

    def take_stale_batch(self, now: str, lease_until: str) -> dict[str, Any] | None:
        return self.db.batches.find_one_and_update(
            {"state": "placing", "lease_until": {"$lt": now}},
            {"$set": {"lease_until": lease_until}}, return_document=ReturnDocument.AFTER)

    def claims_of_batch(self, batch_id: str) -> list[dict[str, Any]]:
        return list(self.db.claims.find({"batch_id": batch_id}, NO_OUTBOX))

    # -- allocations ------------------------------------------------------------------------
    def expect_allocation(self, session_id: str, closes_at: str) -> None:
        """Note that a window session has claims to allocate when its window closes."""
        try:
            self.db.allocations.insert_one({"_id": session_id, "state": "open",
                                            "closes_at": closes_at})
        except DuplicateKeyError:
            pass

    def move_allocation(self, session_id: str, closes_at: str, taken: bool = False) -> bool:
        """Run a not-yet-planned allocation at `closes_at` instead; `taken`: one a sweep took
        too early goes back to waiting. False if there is none (or it was planned)."""
        state = "placing" if taken else "open"
        done = self.db.allocations.update_one(
            {"_id": session_id, "state": state, "seed": {"$exists": False}},
            {"$set": {"state": "open", "closes_at": closes_at}, "$unset": {"lease_until": ""}})
        return done.matched_count == 1

    def session_parties(self, session_id: str) -> list[dict[str, Any]]:
        """Who has claims on a session: each claim's school and venue (no more)."""
        return list(self.db.claims.find({"session_id": session_id},
                                        {"school_id": 1, "venue_id": 1}))

    def allocation(self, session_id: str) -> dict[str, Any] | None:
        return self.db.allocations.find_one({"_id": session_id}, NO_OUTBOX)

    def take_due_allocation(self, now: str, lease_until: str) -> dict[str, Any] | None:
        """Claim one allocation whose window closed (or whose allocator died mid-way)."""
        return self.db.allocations.find_one_and_update(
            {"$or": [{"state": "open", "closes_at": {"$lte": now}},
                     {"state": "placing", "lease_until": {"$lt": now}}]},
            {"$set": {"state": "placing", "lease_until": lease_until}},
            projection=NO_OUTBOX, return_document=ReturnDocument.AFTER)

    def record_plan(self, session_id: str, seed: str, seats_left: int,
                    plan: list[dict[str, Any]]) -> dict[str, Any]:
        """The seed and order are written once; a resumed allocation keeps the first."""
        doc = self.db.allocations.find_one_and_update(
            {"_id": session_id, "seed": {"$exists": False}},
            {"$set": {"seed": seed, "seats_left": seats_left, "plan": plan,
                      "planned_at": clock.stamp()}},
            projection=NO_OUTBOX, return_document=ReturnDocument.AFTER)
        return doc or self.allocation(session_id)  # type: ignore[return-value]

    def finish_allocation(self, session_id: str, state: str,
                          events: tuple[dict[str, Any], ...] = ()) -> None:
        self.db.allocations.update_one(
            {"_id": session_id, "state": {"$ne": state}},
            add_events({"$set": {"state": state, "finished_at": clock.stamp()},
                        "$unset": {"lease_until": ""}}, *events))

    # -- tutor visits -----------------------------------------------------------------------
    def insert_visit(self, visit: dict[str, Any], *events: dict[str, Any]) -> None:
        self.db.tutor_visits.insert_one(with_events(visit, *events))

    def find_visit(self, visit_id: str) -> dict[str, Any] | None:
        return self.db.tutor_visits.find_one({"_id": visit_id}, NO_OUTBOX)

    def visit(self, visit_id: str) -> dict[str, Any]:
        doc = self.db.tutor_visits.find_one({"_id": visit_id}, NO_OUTBOX)
        if doc is None:
            raise NotFound(f"tutor visit {visit_id} not found", code="visit-not-found")
        return doc

    def transition_visit(self, visit_id: str, from_statuses: tuple[str, ...], to_status: str,
                         actor: str, reason: str | None = None,
                         events: tuple[dict[str, Any], ...] = ()) -> dict[str, Any] | None:
        key, entry = history_entry(to_status, actor, reason)
        update = {"$set": {"status": to_status, "updated_at": entry["at"], key: entry}}
        return self.db.tutor_visits.find_one_and_update(
            {"_id": visit_id, "status": {"$in": list(from_statuses)}},
            add_events(update, *events), projection=NO_OUTBOX,
            return_document=ReturnDocument.AFTER)

    def list_visits(self, scope: dict[str, Any], limit: int,
                    cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        return pages.page(self.db.tutor_visits, scope, limit, cursor, NO_OUTBOX,
                          key="list_key", newest_first=True)
