"""The venues service's database: venue records, and the domain objects over its collections.

Collections: `venues`, `tutors`, `sessions` and `series`, each carrying its own outbox.
"""

from __future__ import annotations

from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database

from services.kit import clock
from services.kit.config import Settings
from services.kit.errors import Conflict, NotFound
from services.kit.ids import new_id
from services.kit.mongo import Repository
from services.kit.outbox import add_events, event, with_events
from services.venues.access import require_manager
from services.venues.catalogue import Catalogue
from services.venues.holds import Holds
from services.venues.series import Series
from services.venues.sessions import Sessions
from services.venues.tutors import Tutors


class VenueRepository(Repository):
    outbox_collections = ("venues", "tutors", "sessions", "series")

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self.series = Series(self.db.series, self.db.sessions)
        self.sessions = Sessions(self.db.sessions, self.series)
        self.holds = Holds(self.db.sessions)
        self.catalogue = Catalogue(self.db.sessions, self.db.venues)
        self.tutors = Tutors(self.db.tutors)

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        for key in ("district", "location.lat", "location.lon"):
            self.db.venues.create_index(key)
        self.db.tutors.create_index("venue_id")
        self.db.tutors.create_index("sort_key")
        sessions = self.db.sessions
        for key in ("sort_key", "end_key", "venue_id", "series_id", "district", "published"):
            sessions.create_index(key)
        self.db.series.create_index("state")

    # -- venues -----------------------------------------------------------------------------
    def register_venue(self, data: dict[str, Any]) -> dict[str, Any]:
        venue = {**data, "_id": new_id("ven"), "created_at": clock.stamp(), "version": 0}
        venue["venue_id"] = venue["_id"]
        announced = event("venues.venue_registered", venue)
        self.db.venues.insert_one(with_events(venue, announced))
        return venue

    def venue(self, venue_id: str) -> dict[str, Any]:
        doc = self.db.venues.find_one({"_id": venue_id}, {"outbox": 0})
        if doc is None:
            raise NotFound(f"venue {venue_id} not found", code="venue-not-found")
        return doc

    def update_venue(self, venue_id: str, change: dict[str, Any],
                     actor: dict[str, Any] | None) -> dict[str, Any]:
        """Its own staff edit a venue; sessions to come show the new name and place.

        The edit and its event are one write, conditional on the version read.
        """
        for _ in range(20):
            doc = self.venue(venue_id)
            require_manager(actor, venue_id)
            after = {**doc, **change}
            version = {"$exists": False} if "version" not in doc else doc["version"]
            done = self.db.venues.find_one_and_update(
                {"_id": venue_id, "version": version},
                add_events({"$set": {**change, "version": doc.get("version", 0) + 1}},
                           event("venues.venue_updated", after)),
                projection={"outbox": 0}, return_document=ReturnDocument.AFTER)
            if done is not None:
                self.sessions.follow_venue(done)
                return done
        raise Conflict(f"venue {venue_id} keeps changing; try again", code="busy")
