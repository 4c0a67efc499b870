"""The durable archive of every event monitoring consumed: what a rebuild re-folds.

Each envelope is kept once (`_id` = event id) before it is folded, with no expiry: the
read models are a function of the archive, so `kepu monitoring rebuild` drops them and
folds the archive again, in the order the events occurred. The handler's applied-events
record expires after 30 days; the archive does not, and is the lasting dedup as well.
Events from before monitoring existed are not in it (docs/monitoring.md, "History").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.kit.pages import page, sort_key

BATCH = 500


class Archive:
    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        self.collection.create_index("key")
        self.collection.create_index("type")
        self.collection.create_index("at")

    def keep(self, envelope: dict[str, Any]) -> bool:
        """Archive an envelope; False when it was archived before (a redelivery)."""
        try:
            self.collection.insert_one({
                "_id": envelope["event_id"], "type": envelope["type"],
                "key": sort_key(envelope["occurred_at"], envelope["event_id"]),
                "occurred_at": envelope["occurred_at"], "at": time.time(),
                "envelope": envelope})
            return True
        except DuplicateKeyError:
            return False

    def replay(self) -> Iterator[dict[str, Any]]:
        """Every archived envelope, oldest first, read a batch at a time."""
        cursor = None
        while True:
            rows, cursor = page(self.collection, {}, BATCH, cursor)
            for row in rows:
                yield row["envelope"]
            if cursor is None:
                return

    def newer_than(self, at: float) -> bool:
        """Was any event archived after `at` (epoch seconds)?"""
        return self.collection.find_one({"at": {"$gt": at}}, {"_id": 1}) is not None

    def counts(self) -> dict[str, int]:
        """Archived events per type."""
        return {row["_id"]: row["n"] for row in self.collection.aggregate(
            [{"$group": {"_id": "$type", "n": {"$sum": 1}}}])}
