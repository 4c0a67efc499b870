"""The venues service's database: venue records, and the domain objects over its collections.

Collections: `venues`, `tutors`, `sessions` and `series`, each carrying its own outbox;
`request_keys` binds callers' Idempotency-Keys to what they created (`once`).
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database

from services.kit import clock
from services.kit.actor import Actor
from services.kit.config import Settings
from services.kit.errors import Conflict, NotFound
from services.kit.migrations import UNLINKED, DistrictDirectory, names_without_ids
from services.kit.mongo import Repository
from services.kit.outbox import add_events, event, with_events
from services.kit.pages import page, sort_key
from services.kit.request_keys import RequestKeys, insert_once
from services.venues.access import require_admin, require_manager
from services.venues.catalogue import Catalogue
from services.venues.holds import Holds
from services.venues.series import Series
from services.venues.sessions import Sessions
from services.venues.tutors import Tutors

OLD_KEYS = {"$gte": "t", "$lt": "u"}  # sort keys written before kit.pages: "t<stamp>|<id>"


class VenueRepository(Repository):
    outbox_collections = ("venues", "tutors", "sessions", "series")

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self.request_keys = RequestKeys(self.db.request_keys)
        self.once = self.request_keys
        self.series = Series(self.db.series, self.db.sessions)
        self.sessions = Sessions(self.db.sessions, self.series, self.once)
        self.holds = Holds(self.db.sessions)
        self.catalogue = Catalogue(self.db.sessions, self.db.venues)
        self.tutors = Tutors(self.db.tutors, self.once)
        # identity's districts, kept from `identity.district_registered` (kit.migrations)
        self.districts = DistrictDirectory(self.db.district_directory)

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.districts.ensure_indexes()
        for key in ("district", "district_id", "location.lat", "location.lon"):
            self.db.venues.create_index(key)
        self.db.tutors.create_index("venue_id")
        self.db.tutors.create_index("sort_key")
        sessions = self.db.sessions
        for key in ("sort_key", "end_key", "venue_id", "series_id", "district", "district_id",
                    "published"):
            sessions.create_index(key)
        self.db.series.create_index("state")
        self.request_keys.ensure_indexes()
        self.rekey()

    def rekey(self) -> int:
        """Give documents written before `kit.pages` their `pages.sort_key` keys (once)."""
        done = 0
        for doc in self.db.sessions.find({"sort_key": OLD_KEYS},
                                         {"sort_key": 1, "starts_at": 1, "ends_at": 1}):
            done += self.db.sessions.update_one(
                {"_id": doc["_id"], "sort_key": doc["sort_key"]},
                {"$set": {"sort_key": sort_key(doc["starts_at"], doc["_id"]),
                          "end_key": sort_key(doc["ends_at"])}}).modified_count
        for doc in self.db.tutors.find({"sort_key": OLD_KEYS}, {"created_at": 1}):
            done += self.db.tutors.update_one(
                {"_id": doc["_id"]},
                {"$set": {"sort_key": sort_key(doc["created_at"], doc["_id"])}}).modified_count
        return done

    # -- venues -----------------------------------------------------------------------------
    def register_venue(self, data: dict[str, Any], actor: Actor | None,
                       request_key: str | None = None) -> dict[str, Any]:
        """An admin registers a venue; a retry with the same `request_key` answers the first."""
        admin = require_admin(actor, "register venues")
        venue_id, retried = self.once.new_id("venue", "ven", admin.name, request_key, data)
        if retried and (earlier := self._venue(venue_id)) is not None:
            return earlier
        district_id, district = self.districts.resolve(data)
        venue = {**data, "district_id": district_id, "district": district, "_id": venue_id,
                 "venue_id": venue_id, "created_at": clock.stamp(), "version": 0}
        announced = event("venues.venue_registered", venue)
        earlier = insert_once(self.db.venues, with_events(venue, announced), self._venue)
        return earlier or venue

    def list_venues(self, query: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        """One page of venues (any signed-in caller: a venue's record is public to staff),
        in id order, narrowed by `district_id` and `kind`."""
        flt = {k: query[k] for k in ("district_id", "kind") if query.get(k)}
        return page(self.db.venues, flt, query["limit"], query.get("cursor"),
                    {"outbox": 0}, key="_id")

    def _venue(self, venue_id: str) -> dict[str, Any] | None:
        return self.db.venues.find_one({"_id": venue_id}, {"outbox": 0})

    def venue(self, venue_id: str) -> dict[str, Any]:
        doc = self._venue(venue_id)
        if doc is None:
            raise NotFound(f"venue {venue_id} not found", code="venue-not-found")
        return doc

    def update_venue(self, venue_id: str, change: dict[str, Any],
                     actor: Actor | None) -> dict[str, Any]:
        """Its own staff edit a venue; sessions to come show the new name and place.

        The edit and its event (the whole record, with its new version) are one write,
        conditional on the version read.
        """
        require_manager(actor, venue_id)
        for _ in range(20):
            doc = self.venue(venue_id)
            version = {"$exists": False} if "version" not in doc else doc["version"]
            after = {**doc, **change, "version": doc.get("version", 0) + 1}
            done = self.db.venues.find_one_and_update(
                {"_id": venue_id, "version": version},
                add_events({"$set": {**change, "version": after["version"]}},
                           event("venues.venue_updated", after)),
                projection={"outbox": 0}, return_document=ReturnDocument.AFTER)
            if done is not None:
                self.sessions.follow_venue(done)
                return done
        raise Conflict(f"venue {venue_id} keeps changing; try again", code="busy")

    # -- districts: names to ids (kit.migrations, docs/districts.md) ------------------------
    def district_names(self) -> set[str]:
        """District names of venues not yet linked to a district id."""
        return names_without_ids(self.db.venues)

    def adopt_district_ids(self, mapping: dict[str, str]) -> dict[str, int]:
        """Link venues named in `mapping` (and their sessions) to their district ids.

        Each venue's link is one conditional write with its `venues.venue_updated` event
        (the whole record, version + 1), so booking's and identity's copies follow; a
        venue already linked is left alone, which makes a second run change nothing.
        """
        for name, district_id in mapping.items():
            self.districts.learn({"district_id": district_id, "name": name})
        linked = 0
        for doc in self.db.venues.find({"district": {"$in": sorted(mapping)},
                                        "district_id": UNLINKED}, {"outbox": 0}):
            district_id = mapping.get(doc["district"])
            if district_id is None:  # the server matched a name the map spells otherwise
                continue
            version = doc.get("version", 0) + 1
            after = {**doc, "district_id": district_id, "version": version}
            done = self.db.venues.update_one(
                {"_id": doc["_id"], "district_id": UNLINKED},
                add_events({"$set": {"district_id": district_id, "version": version}},
                           event("venues.venue_updated", after)))
            linked += done.modified_count
        sessions = 0
        for name, district_id in sorted(mapping.items()):
            sessions += self.db.sessions.update_many(
                {"district": name, "district_id": UNLINKED},
                {"$set": {"district_id": district_id, "venue.district_id": district_id}}
            ).modified_count
        return {"venues": linked, "sessions": sessions}
