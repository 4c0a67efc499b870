"""The bulk path: many postings with a few bulk writes, the same outcome as one by one
(docs/ledger.md, "The bulk path")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from services.funding import accounts as chart
from services.funding.ledger.books import ignore_duplicates
from services.funding.ledger.model import (
    APPLIED,
    COMMITTED,
    PENDING,
    check,
    entry_rows,
    groups,
    new_posting,
    split_guarded,
)
from services.funding.ledger.postings import Postings
from services.kit import clock

# (posting id, amount) per account, for one kind of entry of a batch
Marks = dict[str, list[tuple[str, int]]]
BUSY_ACCOUNT = 50  # an account this batch marked at least this often is sealed right away


def marks_by_account(docs: list[dict[str, Any]], guarded: bool) -> Marks:
    """The batch's guarded debits (or all other entries), grouped by account."""
    out: Marks = {}
    for doc in docs:
        first, rest = split_guarded(doc)
        for e in first if guarded else rest:
            out.setdefault(e.account, []).append((doc["_id"], e.amount))
    return out


def marking(account: str, items: list[tuple[str, int]], oldest: str
            ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, $set) that marks every posting of `items` on `account` at once, only if
    none is marked yet and no seal is newer than the batch."""
    flt: dict[str, Any] = {"_id": account, "sealed_before": {"$lte": oldest}}
    sets: dict[str, Any] = {}
    for pid, amount in items:
        flt[f"marks.{pid}"] = {"$exists": False}
        sets[f"marks.{pid}"] = amount
    return flt, sets


class BulkPostings(Postings):
    def post_many(self, postings: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply many postings with bulk writes; same outcome as `post` for each.

        Each item: `posting_id`, `entries` and `post`'s keyword arguments. The guarded
        debits of the batch go to each budget as one conditional update (all or none); if
        a budget cannot cover the batch, or anything else is unusual, the postings are
        driven one by one. Used where postings come in bulk (payout exports, benches).
        """
        if not postings:
            return []
        docs = []
        for item in postings:
            check(item["posting_id"], item["entries"], item["category"])
            docs.append(new_posting(item["posting_id"], item["entries"], kind=item["kind"],
                                    category=item["category"], district=item["district"],
                                    memo=item.get("memo", ""), refs=item.get("refs"),
                                    actor=item.get("actor"), reverses=item.get("reverses")))
        self.open_accounts(e["account"] for d in docs for e in d["entries"])
        try:
            self.postings.insert_many(docs, ordered=False)
            fresh = True
        except BulkWriteError as exc:  # some were posted before: all go one by one
            ignore_duplicates(exc)
            fresh = False
        if fresh:
            self._bulk_apply(docs)
        ids = [d["_id"] for d in docs]
        current = {d["_id"]: d for d in self.postings.find({"_id": {"$in": ids}})}
        out = []
        for pid in ids:
            doc = current[pid]
            if doc["state"] != APPLIED or not doc.get("entries_written"):
                doc = self.drive(doc)
            out.append(doc)
        return out

    def _bulk_apply(self, docs: list[dict[str, Any]]) -> None:
        """Fast path of `post_many` for freshly inserted postings (see its docstring).

        Whatever does not fit (a budget short, a seal, a repeat) is left for `drive`.
        """
        oldest = min(d["created_at"] for d in docs)
        debits = marks_by_account(docs, guarded=True)
        if not self._take_debits(debits, oldest):
            return  # leave the batch to the one-by-one path
        ids = [d["_id"] for d in docs]
        self.postings.update_many({"_id": {"$in": ids}, "state": PENDING},
                                  {"$set": {"state": COMMITTED}})
        rest = marks_by_account(docs, guarded=False)
        self._apply_rest(rest, oldest)
        self._finish_applied(docs)
        # Seal the accounts this batch marked heavily (budgets, transit); an account with a
        # mark or two waits for the recovery timer's sweep.
        busy = sorted(a for a, items in [*debits.items(), *rest.items()]
                      if len(items) >= BUSY_ACCOUNT)
        if busy:
            self.seal_many(busy)

    def _take_debits(self, debits: Marks, oldest: str) -> bool:
        """Each budget's debits of the batch as one conditional update; False at the first
        budget that cannot cover its share (what was taken stays marked: `drive` goes on)."""
        for account, all_items in debits.items():
            for items in groups(all_items):
                need = -sum(amount for _, amount in items)
                flt, sets = marking(account, items, oldest)
                flt["balance"] = {"$gte": chart.floor_of(account) + need}
                applied = self.accounts.update_one(
                    flt, {"$inc": {"balance": -need, "marks_count": len(items)}, "$set": sets})
                if applied.matched_count == 0:
                    return False
        return True

    def _apply_rest(self, rest: Marks, oldest: str) -> None:
        """Credits and unguarded debits of committed postings, a bulk write per 1,000."""
        ops = []
        for account, all_items in rest.items():
            for items in groups(all_items):
                flt, sets = marking(account, items, oldest)
                ops.append(UpdateOne(flt, {"$inc": {"balance": sum(a for _, a in items),
                                                    "marks_count": len(items)},
                                           "$set": sets}))
        for start in range(0, len(ops), 1_000):
            self.accounts.bulk_write(ops[start:start + 1_000], ordered=False)

    def _finish_applied(self, docs: list[dict[str, Any]]) -> None:
        """Write the entries of committed postings marked everywhere; move them to applied."""
        ids = [d["_id"] for d in docs]
        current = {d["_id"]: d for d in self.postings.find({"_id": {"$in": ids}})}
        done = [d["_id"] for d in docs if current[d["_id"]]["state"] == COMMITTED]
        marked_everywhere = self._fully_marked(docs, done)
        rows = [row for doc in docs if doc["_id"] in marked_everywhere
                for row in entry_rows(doc, current[doc["_id"]]["created_at"])]
        for start in range(0, len(rows), 5_000):
            self._insert_rows(rows[start:start + 5_000])
        self.postings.update_many({"_id": {"$in": marked_everywhere}, "state": COMMITTED},
                                  {"$set": {"state": APPLIED, "applied_at": clock.stamp(),
                                            "entries_written": True},
                                   "$unset": {"open": ""}})

    def _fully_marked(self, docs: list[dict[str, Any]], ids: list[str]) -> list[str]:
        """Postings (of `ids`) whose every entry carries its numeric mark."""
        wanted = set(ids)
        accounts = list({e["account"] for d in docs if d["_id"] in wanted
                         for e in d["entries"]})
        marks: dict[str, dict[str, Any]] = {}
        for start in range(0, len(accounts), 1_000):
            for acc in self.accounts.find({"_id": {"$in": accounts[start:start + 1_000]}},
                                          {"marks": 1}):
                marks[acc["_id"]] = acc.get("marks") or {}
        return [doc["_id"] for doc in docs if doc["_id"] in wanted and all(
            isinstance(marks.get(e["account"], {}).get(doc["_id"]), int)
            for e in doc["entries"])]
