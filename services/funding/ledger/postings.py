"""Postings one by one: the state machine that applies a posting account by account,
idempotently, so any worker can drive it to `applied` or `refused` (docs/ledger.md,
"The state machine", "Reversal, not edit" and "Recovery")."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from services.funding import accounts as chart
from services.funding.ledger.model import (
    APPLIED,
    COMMITTED,
    PENDING,
    REFUSED,
    REFUSING,
    VOID,
    Entry,
    LedgerError,
    Reload,
    check,
    entries_of,
    new_posting,
    same_entries,
    split_guarded,
)
from services.funding.ledger.seals import SEAL_ABOVE_MARKS, Seals
from services.kit import clock
from services.kit.errors import Conflict, NotFound
from services.kit.pages import sort_key

log = logging.getLogger("kepu.funding.ledger")


class Postings(Seals):
    def post(self, posting_id: str, entries: Sequence[Entry], *, kind: str, category: str,
             district: str, memo: str = "", refs: dict[str, Any] | None = None,
             actor: str | None = None, reverses: str | None = None) -> dict[str, Any]:
        """Apply a posting once; answers the posting document, `applied` or `refused`.

        A repeat of `posting_id` drives the earlier posting to its end and answers it; the
        same id with other entries is a Conflict.
        """
        check(posting_id, entries, category)
        self.open_accounts(e.account for e in entries)
        doc = new_posting(posting_id, entries, kind=kind, category=category,
                          district=district, memo=memo, refs=refs, actor=actor,
                          reverses=reverses)
        try:
            self.postings.insert_one(doc)
        except DuplicateKeyError:
            existing = self.postings.find_one({"_id": posting_id})
            if existing is None:  # pragma: no cover - deleted between insert and read
                raise
            if not same_entries(existing, entries):
                raise Conflict(f"posting {posting_id} exists with other entries",
                               {"posting_id": ["already used for another posting"]},
                               code="posting-id-reused") from None
            doc = existing
        return self.drive(doc)

    def posting(self, posting_id: str) -> dict[str, Any]:
        doc = self.postings.find_one({"_id": posting_id})
        if doc is None:
            raise NotFound(f"posting {posting_id} not found", code="posting-not-found")
        return doc

    def next_reversal_id(self, posting_id: str) -> str:
        """The id the next reversal of `posting_id` would get: `reversal:<id>`, then `:2`..."""
        earlier = self.postings.count_documents({"reverses": posting_id})
        return f"reversal:{posting_id}" + (f":{earlier + 1}" if earlier else "")

    def reverse(self, posting_id: str, *, kind: str, memo: str = "",
                actor: str | None = None, refs: dict[str, Any] | None = None,
                reversal_id: str | None = None) -> dict[str, Any]:
        """Post the mirror image of an applied posting, once.

        The first try is `reversal:<original>`; a refused reversal (its budget was spent)
        may be tried again later as `reversal:<original>:2`, `:3`... A reversal that is
        applied or still in flight is answered (or driven) instead of a new one. With
        `reversal_id` (bound to a caller's request key), that reversal is answered if it
        exists, even if it was refused: a retried request gets the first one's outcome.
        """
        original = self.posting(posting_id)
        if original["state"] != APPLIED:
            raise Conflict(f"posting {posting_id} is {original['state']}, not applied",
                           code="posting-not-applied")
        earlier = list(self.postings.find({"reverses": posting_id}))
        mine = [d for d in earlier if d["_id"] == reversal_id]
        live = mine or [d for d in earlier if d["state"] != REFUSED]
        if live:
            return self.drive(live[0])
        reversal_id = reversal_id or (
            f"reversal:{posting_id}" + (f":{len(earlier) + 1}" if earlier else ""))
        mirrored = [Entry(e.account, -e.amount) for e in entries_of(original)]
        doc = self.post(reversal_id, mirrored, kind=kind, category=original["category"],
                        district=original["district"], memo=memo, actor=actor,
                        refs={**(original.get("refs") or {}), **(refs or {})},
                        reverses=posting_id)
        if doc["state"] == APPLIED:
            self.postings.update_one({"_id": posting_id}, {"$set": {"reversed_by": reversal_id}})
        return doc

    # -- the state machine ------------------------------------------------------------
    def drive(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Carry a posting from whatever state it is in to `applied` or `refused`."""
        self.open_accounts(e["account"] for e in doc["entries"])
        for _ in range(1_000):
            try:
                doc, done = self._step(doc)
            except Reload:
                doc, done = self.posting(doc["_id"]), False
            if done:
                return doc
        raise LedgerError(f"posting {doc['_id']} did not settle")  # pragma: no cover

    def _step(self, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """One move of the state machine: (the posting after it, whether it is final)."""
        state = doc["state"]
        if state == PENDING:
            return self._phase_one(doc), False
        if state == COMMITTED:
            return self._phase_two(doc), False
        if state == REFUSING:
            self._void(doc)
            return self._move(doc, REFUSING, REFUSED, {"finished_at": clock.stamp()},
                              final=True), False
        if state == APPLIED:
            if not doc.get("entries_written"):
                self._write_entries(doc)
                doc = {**doc, "entries_written": True}
            return doc, True
        if state == REFUSED:
            return doc, True
        raise LedgerError(f"posting {doc['_id']} in unknown state {state}")  # pragma: no cover

    def _phase_one(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Take every guarded debit, or refuse the posting at the first that cannot pay."""
        guarded, _ = split_guarded(doc)
        for entry in guarded:
            outcome, detail = self._apply(doc, entry)
            if outcome == "insufficient":
                refusal = {"code": "insufficient-funds", "account": entry.account,
                           "balance": detail, "needed": -entry.amount,
                           "detail": f"{entry.account} has {detail} fen; "
                                     f"{-entry.amount} fen needed"}
                return self._move(doc, PENDING, REFUSING, {"refusal": refusal})
            if outcome == "void":
                raise Reload()
            doc = detail if isinstance(detail, dict) else doc
        return self._move(doc, PENDING, COMMITTED, {})

    def _phase_two(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Apply the rest (it cannot fail), write the entries, and move to `applied`."""
        _, rest = split_guarded(doc)
        if len(rest) > 8:
            self._bulk_marks(doc, rest)
        else:
            for entry in rest:
                outcome, detail = self._apply(doc, entry)
                if outcome != "applied":  # pragma: no cover - credits cannot be refused
                    raise LedgerError(f"committed posting {doc['_id']}: {outcome} on "
                                      f"{entry.account}")
                doc = detail if isinstance(detail, dict) else doc
        # A committed posting always ends applied, and its time no longer moves (every mark
        # is in place, so nobody restamps it): its entries can be written now.
        self._insert_entries(doc)
        return self._move(doc, COMMITTED, APPLIED, {"applied_at": clock.stamp(),
                                                    "entries_written": True}, final=True)

    def _move(self, doc: dict[str, Any], old: str, new: str, extra: dict[str, Any],
              final: bool = False) -> dict[str, Any]:
        """Compare-and-set of the posting state; on a lost race, reload and carry on."""
        update: dict[str, Any] = {"$set": {"state": new, **extra}}
        if final:
            update["$unset"] = {"open": ""}
        moved = self.postings.find_one_and_update({"_id": doc["_id"], "state": old}, update,
                                                  return_document=ReturnDocument.AFTER)
        if moved is None:
            raise Reload()
        return moved

    def _apply(self, doc: dict[str, Any], entry: Entry) -> tuple[str, Any]:
        """Apply one entry once. ("applied", doc) | ("insufficient", balance) | ("void", None).

        `doc` comes back restamped if the account was sealed past the posting's time.
        """
        pid = doc["_id"]
        floor = chart.floor_of(entry.account)
        guarded = floor is not None and entry.amount < 0
        for _ in range(50):
            flt: dict[str, Any] = {"_id": entry.account, f"marks.{pid}": {"$exists": False},
                                   "sealed_before": {"$lte": doc["created_at"]}}
            if guarded:
                flt["balance"] = {"$gte": floor - entry.amount}
            after = self.accounts.find_one_and_update(
                flt, {"$inc": {"balance": entry.amount, "marks_count": 1},
                      "$set": {f"marks.{pid}": entry.amount}},
                projection={"marks_count": 1}, return_document=ReturnDocument.AFTER)
            if after is not None:
                if after.get("marks_count", 0) > SEAL_ABOVE_MARKS:
                    self.maybe_seal(entry.account)
                return "applied", doc
            current = self.accounts.find_one({"_id": entry.account},
                                             {"marks": 1, "balance": 1, "sealed_before": 1})
            if current is None:
                raise LedgerError(f"account {entry.account} does not exist")
            mark = (current.get("marks") or {}).get(pid)
            if mark == VOID:
                return "void", None
            if mark is not None:
                return "applied", doc
            if current["sealed_before"] > doc["created_at"]:
                doc = self._restamp(doc, current["sealed_before"])
                continue
            if guarded and int(current["balance"]) + entry.amount < floor:
                return "insufficient", int(current["balance"])
        raise LedgerError(f"could not apply {pid} to {entry.account}")  # pragma: no cover

    def _restamp(self, doc: dict[str, Any], seal: str) -> dict[str, Any]:
        """Move an unfinished posting's time past a seal it met (docs/ledger.md, "Seals")."""
        new = max(clock.stamp(), seal)
        moved = self.postings.find_one_and_update(
            {"_id": doc["_id"], "state": {"$in": [PENDING, COMMITTED]},
             "created_at": doc["created_at"]},
            {"$set": {"created_at": new, "key": sort_key(new, doc["_id"])},
             "$inc": {"restamps": 1}},
            return_document=ReturnDocument.AFTER)
        if moved is None:
            raise Reload()
        return moved

    def _bulk_marks(self, doc: dict[str, Any], entries: list[Entry]) -> None:
        """Unguarded entries of a large posting in one round trip; stragglers one by one."""
        pid = doc["_id"]
        ops = [UpdateOne({"_id": e.account, f"marks.{pid}": {"$exists": False},
                          "sealed_before": {"$lte": doc["created_at"]}},
                         {"$inc": {"balance": e.amount, "marks_count": 1},
                          "$set": {f"marks.{pid}": e.amount}}) for e in entries]
        result = self.accounts.bulk_write(ops, ordered=False)
        if result.matched_count == len(entries):
            return
        marked = {d["_id"] for d in self.accounts.find(
            {"_id": {"$in": [e.account for e in entries]}, f"marks.{pid}": {"$exists": True}},
            {"_id": 1})}
        for entry in entries:
            if entry.account not in marked:
                outcome, _ = self._apply(doc, entry)
                if outcome != "applied":  # pragma: no cover
                    raise LedgerError(f"committed posting {pid}: {outcome} on {entry.account}")

    def _void(self, doc: dict[str, Any]) -> None:
        """Give back every guarded debit of a refused posting and leave tombstones."""
        guarded, _ = split_guarded(doc)
        for entry in guarded:
            for _ in range(50):
                if self._void_once(doc["_id"], entry):
                    break

    def _void_once(self, pid: str, entry: Entry) -> bool:
        """One try at turning `pid`'s mark on the entry's account into a tombstone."""
        undone = self.accounts.find_one_and_update(
            {"_id": entry.account, f"marks.{pid}": entry.amount},
            {"$inc": {"balance": -entry.amount}, "$set": {f"marks.{pid}": VOID}})
        if undone is not None:
            return True
        blocked = self.accounts.find_one_and_update(
            {"_id": entry.account, f"marks.{pid}": {"$exists": False}},
            {"$set": {f"marks.{pid}": VOID}, "$inc": {"marks_count": 1}})
        if blocked is not None:
            return True
        current = self.accounts.find_one({"_id": entry.account}, {"marks": 1})
        return current is None or (current.get("marks") or {}).get(pid) == VOID

    # -- recovery -----------------------------------------------------------------------
    def recover(self, older_than_s: float = 30.0, limit: int = 200) -> int:
        """Finish postings left open or without entries by a worker that died; seal."""
        cutoff = clock.stamp(clock.now() - timedelta(seconds=older_than_s))
        stuck = list(self.postings.find({"open": True, "created_at": {"$lt": cutoff}})
                     .limit(limit))
        for doc in stuck:
            log.warning("finishing posting %s left %s", doc["_id"], doc["state"])
            self.drive(doc)
        marked = [a["_id"] for a in self.accounts.find({"marks_count": {"$gt": 0}},
                                                        {"_id": 1}).limit(5_000)]
        for start in range(0, len(marked), 1_000):
            self.seal_many(marked[start:start + 1_000])
        return len(stuck)
