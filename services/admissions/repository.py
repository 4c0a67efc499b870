"""The admissions service's database.

Collections: `codes` (one-time codes per household digest, with their SMS in the
outbox), `bookings` (family and training bookings, each with its outbox), `schools`
(names from `booking.school_registered`, for the venue's register) and `request_keys`.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from services.kit.config import Settings
from services.kit.mongo import Repository
from services.kit.request_keys import RequestKeys


class AdmissionsRepository(Repository):
    outbox_collections = ("codes", "bookings")

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self.once = RequestKeys(self.db.request_keys)

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        bookings = self.db.bookings
        # one standing booking per household per session: the database decides, not a read
        bookings.create_index([("session_id", ASCENDING), ("household", ASCENDING),
                               ("slot", ASCENDING)], unique=True, name="one_per_household")
        bookings.create_index("ticket_code", unique=True)
        for key in ("session_id", "venue_id", "day", "status", "sort_key", "wait_key",
                    "erase_after", "hold_expires_at", "school_id"):
            bookings.create_index(key)
        self.once.ensure_indexes()

    def learn_school(self, data: dict[str, Any]) -> None:
        self.db.schools.update_one({"_id": data["school_id"]},
                                   {"$set": {"name": data.get("name")}}, upsert=True)
