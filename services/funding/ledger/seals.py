"""Seals: dropping the marks of final postings so accounts do not grow without bound,
without ever letting a late worker apply a posting twice (docs/ledger.md, "Seals")."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, UpdateOne

from services.funding.ledger.books import Books
from services.funding.ledger.model import FINAL_STATES, groups
from services.kit import clock

SEAL_ABOVE_MARKS = 64  # an account with more marks than this is sealed after an apply
SEAL_MARGIN_S = 0.5  # seals trail now by this much, to spare in-flight postings a restamp
SEAL_EVERY_S = 0.25  # at most this often per account and process


class Seals(Books):
    def horizon(self) -> str:
        """The newest safe seal: before every open posting, and a little behind now."""
        limit = clock.stamp(clock.now() - timedelta(seconds=SEAL_MARGIN_S))
        oldest = self.postings.find_one({"open": True}, {"created_at": 1},
                                        sort=[("created_at", ASCENDING)])
        return min(limit, oldest["created_at"]) if oldest else limit

    def maybe_seal(self, account_id: str) -> int:
        last = self._sealed_at.get(account_id, 0.0)
        if time.monotonic() - last < SEAL_EVERY_S:
            return 0
        self._sealed_at[account_id] = time.monotonic()
        return self.seal(account_id)

    def seal(self, account_id: str) -> int:
        return self.seal_many([account_id])

    def seal_many(self, account_ids: Sequence[str]) -> int:
        """Drop the marks of final postings older than the horizon; answers how many.

        One horizon, one read of the accounts, one finality check of their postings and
        one bulk write, for any number of accounts.
        """
        horizon = self.horizon()
        accounts = list(self.accounts.find({"_id": {"$in": list(account_ids)}},
                                           {"marks": 1, "sealed_before": 1}))
        final = self._final_before(horizon, accounts)
        ops, dropped = [], 0
        for acc in accounts:
            gone = [pid for pid in (acc.get("marks") or {}) if pid in final]
            if gone:
                ops += _seal_ops(acc, gone, horizon)
                dropped += len(gone)
        if not ops:
            return 0
        result = self.accounts.bulk_write(ops, ordered=True)
        return dropped if result.modified_count == len(ops) else -1

    def _final_before(self, horizon: str, accounts: list[dict[str, Any]]) -> set[str]:
        """Postings marked on `accounts` that are final and older than `horizon`."""
        pids = sorted({pid for acc in accounts for pid in (acc.get("marks") or {})})
        final: set[str] = set()
        for start in range(0, len(pids), 1_000):
            # by `_id` alone: nx-27017 scans when other conditions join an `$in` (kit/mongo.py)
            final.update(p["_id"] for p in self.postings.find(
                {"_id": {"$in": pids[start:start + 1_000]}}, {"state": 1, "created_at": 1})
                if p["state"] in FINAL_STATES and p["created_at"] < horizon)
        return final


def _seal_ops(acc: dict[str, Any], gone: list[str], horizon: str) -> list[UpdateOne]:
    """Raise the account's seal first (never lower it), then drop the marks it covers."""
    ops = []
    if horizon > acc["sealed_before"]:
        ops.append(UpdateOne({"_id": acc["_id"], "sealed_before": acc["sealed_before"]},
                             {"$set": {"sealed_before": horizon}}))
    # drop marks only while the seal covers them, each group only if all its marks are
    # still there (so marks_count stays exact); nx-27017 silently ignores a $unset of
    # more than ~126 paths, hence groups of 100 (kit/mongo.py, "nx-27017").
    for group in groups(gone, 100):
        ops.append(UpdateOne(
            {"_id": acc["_id"], "sealed_before": {"$gte": horizon},
             **{f"marks.{pid}": {"$exists": True} for pid in group}},
            {"$unset": {f"marks.{pid}": "" for pid in group},
             "$inc": {"marks_count": -len(group)}}))
    return ops
