"""The durable archive of every event monitoring consumed: its ledger, queue and history.

Each envelope is kept once (`_id` = event id), with no expiry, and that insert is all a
handler does: the insert is the handler's ledger (a redelivery is a duplicate key) and the
queue of events still to fold (`folded_at` 0 until a fold marks it; repository.py folds
them in batches). The read models are a function of the archive, so `kepu monitoring
rebuild` drops them and folds the archive again, in the order the events occurred.
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
PENDING = 0  # `folded_at` of an event archived and not yet folded
FAILED = -1  # `folded_at` of an event whose fold could not read it (`fold_error` says why)


class Archive:
    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        self.collection.create_index("key")
        self.collection.create_index("type")
        self.collection.create_index("folded_at")  # the queue, and the reports' change marker

    def keep(self, envelope: dict[str, Any]) -> bool:
        """Archive an envelope to be folded; False when it was archived before (a redelivery).

        One insert. A redelivery of an event archived before folds were deferred (no
        `folded_at`: its fold may have failed after the insert) is queued to fold again,
        harmlessly: folds are idempotent."""
        try:
            self.collection.insert_one({
                "_id": envelope["event_id"], "type": envelope["type"],
                "key": sort_key(envelope["occurred_at"], envelope["event_id"]),
                "occurred_at": envelope["occurred_at"], "at": time.time(),
                "folded_at": PENDING, "envelope": envelope})
            return True
        except DuplicateKeyError:
            self.collection.update_one({"_id": envelope["event_id"],
                                        "folded_at": {"$exists": False}},
                                       {"$set": {"folded_at": PENDING}})
            return False

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` archived envelopes not folded yet (in no particular order: folds
        are order-tolerant)."""
        return [row["envelope"] for row in self.collection.find(
            {"folded_at": PENDING}, {"envelope": 1}).limit(limit)]

    def mark_folded(self, event_ids: list[str], at: float) -> None:
        """Stamp folded events with `at`, taken after their facts were written: a report
        computed before then is older than the stamp, and is known to be stale."""
        self.collection.update_many({"_id": {"$in": event_ids}, "folded_at": PENDING},
                                    {"$set": {"folded_at": at}})

    def mark_failed(self, event_id: str, error: str) -> None:
        """Set aside an event its fold cannot read: not folded again until a rebuild."""
        self.collection.update_one({"_id": event_id, "folded_at": PENDING},
                                   {"$set": {"folded_at": FAILED, "fold_error": error}})

    def set_aside(self, limit: int = 100) -> list[dict[str, Any]]:
        """Events whose fold failed on their data (`mark_failed`), for `kepu monitoring check`."""
        return list(self.collection.find({"folded_at": FAILED},
                                         {"type": 1, "fold_error": 1}).limit(limit))

    def replay(self) -> Iterator[dict[str, Any]]:
        """Every archived envelope, oldest first, read a batch at a time."""
        cursor = None
        while True:
            rows, cursor = page(self.collection, {}, BATCH, cursor)
            for row in rows:
                yield row["envelope"]
            if cursor is None:
                return

    def folded_since(self, at: float) -> bool:
        """Was any event folded after `at` (epoch seconds)?"""
        return self.collection.find_one({"folded_at": {"$gt": at}}, {"_id": 1}) is not None

    def counts(self) -> dict[str, int]:
        """Archived events per type."""
        return {row["_id"]: row["n"] for row in self.collection.aggregate(
            [{"$group": {"_id": "$type", "n": {"$sum": 1}}}])}
