"""The ledger's three collections and the writes every part shares: opening accounts,
writing entry rows (docs/ledger.md, "Accounts" and "Entries")."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.database import Database
from pymongo.errors import BulkWriteError

from services.funding import accounts as chart
from services.funding.ledger.model import NEVER_SEALED, entry_rows
from services.kit import clock


def ignore_duplicates(exc: BulkWriteError) -> None:
    """Re-raise a bulk insert's failure unless every error is a duplicate key (a repeat)."""
    if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
        raise exc


class Books:
    def __init__(self, db: Database) -> None:
        self.accounts = db.ledger_accounts
        self.postings = db.postings
        self.entries = db.entries
        self._known: set[str] = set()
        self._sealed_at: dict[str, float] = {}

    def ensure_indexes(self) -> None:
        # Single-field indexes: nx-27017 answers equality (and a range on one field) from
        # them, but not from compound indexes nor `$in` on a field other than `_id`
        # (kit/mongo.py, "nx-27017").
        self.postings.create_index("open")  # set while pending, committed or refusing
        self.postings.create_index("reverses")
        self.entries.create_index("account")
        self.entries.create_index("district")
        self.accounts.create_index("district")
        self.accounts.create_index("marks_count")

    def open_accounts(self, account_ids: Iterable[str], names: dict[str, str] | None = None
                      ) -> None:
        """Create accounts that do not exist yet (idempotent; ids say what they are)."""
        wanted = [a for a in dict.fromkeys(account_ids) if a not in self._known]
        if not wanted:
            return
        now = clock.stamp()
        docs = []
        for account_id in wanted:
            info = chart.describe(account_id)
            docs.append({"_id": account_id, **info, "name": (names or {}).get(account_id),
                         "floor": chart.floor_of(account_id), "balance": 0, "marks": {},
                         "marks_count": 0, "sealed_before": NEVER_SEALED,
                         "opened_at": now})
        try:
            self.accounts.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            ignore_duplicates(exc)
        self._known.update(wanted)

    def _write_entries(self, doc: dict[str, Any]) -> None:
        self._insert_entries(doc)
        self.postings.update_one({"_id": doc["_id"]}, {"$set": {"entries_written": True}})

    def _insert_entries(self, doc: dict[str, Any]) -> None:
        self._insert_rows(entry_rows(doc, doc["created_at"]))

    def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        """Insert entry rows; rows already there (a repeat) are left as they are."""
        try:
            self.entries.insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            ignore_duplicates(exc)
