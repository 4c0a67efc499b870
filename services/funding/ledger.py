"""The ledger: double-entry, append-only, in integer fen, correct without transactions.

A *posting* is a set of entries on accounts that sums to zero, identified by an
idempotency id: posting the same id again is a no-op that answers the first outcome.
Corrections are reversals: a new posting with the entries negated, pointing at the
original. Nothing is ever updated in place except account balance counters.

Why it is built this way
------------------------
A posting touches several account documents, and MongoDB without multi-document
transactions (nx-27017 has none; DESIGN.md keeps to the portable subset) can only change
one document atomically. Budgets must never go below zero, so the check and the debit must
be one atomic step on the budget document. The posting is therefore applied account by
account, as a small state machine recorded on the posting document, and every step is
idempotent, so any worker (the one that started it, a retry, or the recovery timer) can
drive an unfinished posting to its end:

1. `pending`: the posting document is inserted first, carrying its entries. An insert that
   hits the unique id finds the earlier posting and drives or answers that one instead.
2. Guarded debits (a debit on a floored account: a budget) are applied first, each one
   `find_one_and_update({_id: account, marks.<posting>: absent, balance >= amount},
   {$inc: {balance: -amount}, $set: {marks.<posting>: -amount}})`. The mark makes a repeat
   a no-op. If a budget cannot cover its debit, the posting moves `pending -> refusing`
   and every guarded debit is undone (`marks.<posting>` turns into a `void` tombstone in
   the same update that gives the money back), then `refused` with the reason.
3. `pending -> committed` is a compare-and-set on the posting: exactly one of "commit"
   and "refuse" wins, so a slow worker can never commit what another refused or refuse
   what another committed. From here the posting cannot fail: the remaining entries are
   credits and unguarded debits, applied with the same marks.
   A posting without guarded debits (a funding, a payout) cannot be refused and is
   inserted `committed` right away.
4. Once every entry carries its mark, the entries are written to `entries` (one document
   per entry, id `<posting>:<n>`, insert ignoring duplicates; only committed postings get
   there, and they always end applied), then `committed -> applied`. `entries` is the
   history: point-in-time balances are sums over it.

Marks would grow without bound on a busy budget, so they are *sealed* away: an account
carries `sealed_before` (a time stamp), and an entry may only be applied when
`sealed_before <= posting.created_at`. Sealing first raises `sealed_before` (never lowers
it), then removes the marks of postings that are final (applied or refused) and older
than the seal, only while the seal still covers them; so a worker that comes back late
with an old posting can never apply it twice (its mark is gone only where the seal now
refuses it). A non-final posting that meets a seal newer than its `created_at` is
*restamped* (`created_at` moved past the seal, compare-and-set while still non-final) and
carries on; its own marks are never sealed away before it is final, so the check stays
exact. Seals trail the oldest open posting (postings carry `open: true` until final), so
restamps are rare. An apply that leaves more than SEAL_ABOVE_MARKS marks on an account
seals it; the service's recovery timer seals the rest.

What a crash leaves behind is finished by `recover` (the service's timer): open postings
older than 30 s are driven to their end, forwards (committed) or backwards (refusing).

Invariants (services/funding/tests/test_properties.py checks them under random flows,
test_reports.py under racing threads): every account's balance counter equals the sum of
its entries once postings are final; all entries sum to zero; no floored account is ever
below its floor, at any moment.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.funding import accounts as chart
from services.funding.pages import sort_key
from services.kit import clock
from services.kit.errors import Conflict, NotFound

log = logging.getLogger("kepu.funding.ledger")

PENDING, COMMITTED, APPLIED, REFUSING, REFUSED = (
    "pending", "committed", "applied", "refusing", "refused")
OPEN_STATES = (PENDING, COMMITTED, REFUSING)
FINAL_STATES = (APPLIED, REFUSED)
VOID = "void"
# Where seals start. Not "": nx-27017 compares time-like strings as times, and "" with none.
NEVER_SEALED = "1970-01-01T00:00:00.000000Z"

MAX_ENTRIES = 2_000
SEAL_ABOVE_MARKS = 64  # an account with more marks than this is sealed after an apply
SEAL_MARGIN_S = 0.5  # seals trail now by this much, to spare in-flight postings a restamp
SEAL_EVERY_S = 0.25  # at most this often per account and process
_POSTING_ID = re.compile(r"^[A-Za-z0-9_:\-]{1,160}$")


class LedgerError(Exception):
    """A programming error: an unknown account, an unbalanced posting."""


@dataclass(frozen=True)
class Entry:
    account: str
    amount: int


class _Reload(Exception):
    """The posting changed under this worker; read it again and carry on from its state."""


def _groups(items: list[Any], size: int = 200) -> list[list[Any]]:
    """Conditions per update stay well under nx-27017's expression depth limit (1000)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def entries_of(doc: dict[str, Any]) -> list[Entry]:
    return [Entry(e["account"], int(e["amount"])) for e in doc["entries"]]


class Ledger:
    def __init__(self, db: Database) -> None:
        self.accounts = db.ledger_accounts
        self.postings = db.postings
        self.entries = db.entries
        self._known: set[str] = set()
        self._sealed_at: dict[str, float] = {}

    def ensure_indexes(self) -> None:
        # Single-field indexes: nx-27017 answers equality (and a range on one field) from
        # them, but not from compound indexes nor `$in` on a field other than `_id`.
        self.postings.create_index("open")  # set while pending, committed or refusing
        self.postings.create_index("reverses")
        self.entries.create_index("account")
        self.entries.create_index("district")
        self.accounts.create_index("district")
        self.accounts.create_index("marks_count")

    # -- accounts ---------------------------------------------------------------------
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
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
        self._known.update(wanted)

    def account(self, account_id: str) -> dict[str, Any]:
        doc = self.accounts.find_one({"_id": account_id}, {"marks": 0})
        if doc is None:
            raise NotFound(f"account {account_id} not found", code="account-not-found")
        return doc

    def balances(self, account_ids: Sequence[str]) -> dict[str, int]:
        """Current balances (accounts never opened count as 0)."""
        found = {d["_id"]: int(d["balance"]) for d in
                 self.accounts.find({"_id": {"$in": list(account_ids)}}, {"balance": 1})}
        return {a: found.get(a, 0) for a in account_ids}

    # -- posting ----------------------------------------------------------------------
    def post(self, posting_id: str, entries: Sequence[Entry], *, kind: str, category: str,
             district: str, memo: str = "", refs: dict[str, Any] | None = None,
             actor: str | None = None, reverses: str | None = None) -> dict[str, Any]:
        """Apply a posting once; answers the posting document, `applied` or `refused`.

        A repeat of `posting_id` drives the earlier posting to its end and answers it; the
        same id with other entries is a Conflict.
        """
        self._check(posting_id, entries, category)
        self.open_accounts(e.account for e in entries)
        doc = self._new(posting_id, entries, kind=kind, category=category, district=district,
                        memo=memo, refs=refs, actor=actor, reverses=reverses)
        try:
            self.postings.insert_one(doc)
        except DuplicateKeyError:
            existing = self.postings.find_one({"_id": posting_id})
            if existing is None:  # pragma: no cover - deleted between insert and read
                raise
            if sorted((e.account, e.amount) for e in entries_of(existing)) != sorted(
                    (e.account, e.amount) for e in entries):
                raise Conflict(f"posting {posting_id} exists with other entries",
                               {"posting_id": ["already used for another posting"]},
                               code="posting-id-reused") from None
            doc = existing
        return self.drive(doc)

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
            entries = item["entries"]
            self._check(item["posting_id"], entries, item["category"])
            docs.append(self._new(item["posting_id"], entries, kind=item["kind"],
                                  category=item["category"], district=item["district"],
                                  memo=item.get("memo", ""), refs=item.get("refs"),
                                  actor=item.get("actor"), reverses=item.get("reverses")))
        self.open_accounts(e["account"] for d in docs for e in d["entries"])
        try:
            self.postings.insert_many(docs, ordered=False)
            fresh = True
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
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

    def _check(self, posting_id: str, entries: Sequence[Entry], category: str) -> None:
        if not _POSTING_ID.match(posting_id):
            raise LedgerError(f"bad posting id {posting_id!r}")
        if category not in chart.CATEGORIES:
            raise LedgerError(f"unknown category {category!r}")
        if not 2 <= len(entries) <= MAX_ENTRIES:
            raise LedgerError(f"a posting has 2 to {MAX_ENTRIES} entries, not {len(entries)}")
        if len({e.account for e in entries}) != len(entries):
            raise LedgerError("an account appears twice in one posting")
        for e in entries:
            if type(e.amount) is not int or e.amount == 0:
                raise LedgerError(f"entry amounts are non-zero integer fen: {e!r}")
        if sum(e.amount for e in entries) != 0:
            raise LedgerError(f"posting {posting_id} does not balance")

    @staticmethod
    def _new(posting_id: str, entries: Sequence[Entry], **fields: Any) -> dict[str, Any]:
        now = clock.stamp()
        terms = sorted({chart.describe(e.account)["term"] for e in entries})
        # Without a guarded debit nothing can refuse the posting: it starts committed.
        guarded = any(chart.floor_of(e.account) is not None and e.amount < 0 for e in entries)
        return {"_id": posting_id, "state": PENDING if guarded else COMMITTED,
                "open": True, "created_at": now,
                "key": sort_key(now, posting_id),
                "entries": [{"account": e.account, "amount": e.amount} for e in entries],
                "terms": terms, "total": sum(e.amount for e in entries if e.amount > 0),
                **fields}

    def posting(self, posting_id: str) -> dict[str, Any]:
        doc = self.postings.find_one({"_id": posting_id})
        if doc is None:
            raise NotFound(f"posting {posting_id} not found", code="posting-not-found")
        return doc

    def reverse(self, posting_id: str, *, kind: str, memo: str = "",
                actor: str | None = None, refs: dict[str, Any] | None = None
                ) -> dict[str, Any]:
        """Post the mirror image of an applied posting, once.

        The first try is `reversal:<original>`; a refused reversal (its budget was spent)
        may be tried again later as `reversal:<original>:2`, `:3`... A reversal that is
        applied or still in flight is answered (or driven) instead of a new one.
        """
        original = self.posting(posting_id)
        if original["state"] != APPLIED:
            raise Conflict(f"posting {posting_id} is {original['state']}, not applied",
                           code="posting-not-applied")
        earlier = list(self.postings.find({"reverses": posting_id}))
        live = [d for d in earlier if d["state"] != REFUSED]
        if live:
            return self.drive(live[0])
        reversal_id = f"reversal:{posting_id}" + (f":{len(earlier) + 1}" if earlier else "")
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
            state = doc["state"]
            try:
                if state == PENDING:
                    doc = self._phase_one(doc)
                elif state == COMMITTED:
                    doc = self._phase_two(doc)
                elif state == REFUSING:
                    self._void(doc)
                    doc = self._move(doc, REFUSING, REFUSED, {"finished_at": clock.stamp()},
                                     final=True)
                elif state == APPLIED:
                    if not doc.get("entries_written"):
                        self._write_entries(doc)
                        doc = {**doc, "entries_written": True}
                    return doc
                elif state == REFUSED:
                    return doc
                else:  # pragma: no cover - no other states are ever written
                    raise LedgerError(f"posting {doc['_id']} in unknown state {state}")
            except _Reload:
                doc = self.posting(doc["_id"])
        raise LedgerError(f"posting {doc['_id']} did not settle")  # pragma: no cover

    def _guarded(self, doc: dict[str, Any]) -> tuple[list[Entry], list[Entry]]:
        """(guarded debits, everything else), each in a fixed order."""
        first, rest = [], []
        for e in entries_of(doc):
            (first if chart.floor_of(e.account) is not None and e.amount < 0 else rest).append(e)
        return sorted(first, key=lambda e: e.account), sorted(rest, key=lambda e: e.account)

    def _phase_one(self, doc: dict[str, Any]) -> dict[str, Any]:
        guarded, _ = self._guarded(doc)
        for entry in guarded:
            outcome, detail = self._apply(doc, entry)
            if outcome == "insufficient":
                refusal = {"code": "insufficient-funds", "account": entry.account,
                           "balance": detail, "needed": -entry.amount,
                           "detail": f"{entry.account} has {detail} fen; "
                                     f"{-entry.amount} fen needed"}
                return self._move(doc, PENDING, REFUSING, {"refusal": refusal})
            if outcome == "void":
                raise _Reload()
            doc = detail if isinstance(detail, dict) else doc
        return self._move(doc, PENDING, COMMITTED, {})

    def _phase_two(self, doc: dict[str, Any]) -> dict[str, Any]:
        _, rest = self._guarded(doc)
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
            raise _Reload()
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
        """Move an unfinished posting's time past a seal it met (see the module docs)."""
        new = max(clock.stamp(), seal)
        moved = self.postings.find_one_and_update(
            {"_id": doc["_id"], "state": {"$in": [PENDING, COMMITTED]},
             "created_at": doc["created_at"]},
            {"$set": {"created_at": new, "key": sort_key(new, doc["_id"])},
             "$inc": {"restamps": 1}},
            return_document=ReturnDocument.AFTER)
        if moved is None:
            raise _Reload()
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
        pid = doc["_id"]
        guarded, _ = self._guarded(doc)
        for entry in guarded:
            for _ in range(50):
                undone = self.accounts.find_one_and_update(
                    {"_id": entry.account, f"marks.{pid}": entry.amount},
                    {"$inc": {"balance": -entry.amount}, "$set": {f"marks.{pid}": VOID}})
                if undone is not None:
                    break
                blocked = self.accounts.find_one_and_update(
                    {"_id": entry.account, f"marks.{pid}": {"$exists": False}},
                    {"$set": {f"marks.{pid}": VOID}, "$inc": {"marks_count": 1}})
                if blocked is not None:
                    break
                current = self.accounts.find_one({"_id": entry.account}, {"marks": 1})
                if current is None or (current.get("marks") or {}).get(pid) == VOID:
                    break

    def _write_entries(self, doc: dict[str, Any]) -> None:
        self._insert_entries(doc)
        self.postings.update_one({"_id": doc["_id"]}, {"$set": {"entries_written": True}})

    def _insert_entries(self, doc: dict[str, Any]) -> None:
        self._insert_rows(self._entry_rows(doc, doc["created_at"]))

    @staticmethod
    def _entry_rows(doc: dict[str, Any], at: str) -> list[dict[str, Any]]:
        rows = []
        for n, e in enumerate(doc["entries"]):
            entry_id = f"{doc['_id']}:{n:04d}"
            rows.append({"_id": entry_id, "account": e["account"], "amount": int(e["amount"]),
                         "at": at, "key": sort_key(at, entry_id), "posting_id": doc["_id"],
                         "kind": doc["kind"], "category": doc["category"],
                         "district": doc["district"],
                         "term": chart.describe(e["account"])["term"],
                         "memo": doc.get("memo", "")})
        return rows

    def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        """Insert entry rows; rows already there (a repeat) are left as they are."""
        try:
            self.entries.insert_many(rows, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    # -- bulk ---------------------------------------------------------------------------
    def _bulk_apply(self, docs: list[dict[str, Any]]) -> None:
        """Fast path of `post_many` for freshly inserted postings (see its docstring)."""
        by_account: dict[str, list[tuple[str, int]]] = {}
        for doc in docs:
            guarded, _ = self._guarded(doc)
            for e in guarded:
                by_account.setdefault(e.account, []).append((doc["_id"], e.amount))
        oldest = min(d["created_at"] for d in docs)
        for account, all_items in by_account.items():
            for items in _groups(all_items):
                need = -sum(amount for _, amount in items)
                flt: dict[str, Any] = {"_id": account, "sealed_before": {"$lte": oldest},
                                       "balance": {"$gte": chart.floor_of(account) + need}}
                sets = {}
                for pid, amount in items:
                    flt[f"marks.{pid}"] = {"$exists": False}
                    sets[f"marks.{pid}"] = amount
                applied = self.accounts.update_one(
                    flt, {"$inc": {"balance": -need, "marks_count": len(items)}, "$set": sets})
                if applied.matched_count == 0:
                    return  # leave the batch to the one-by-one path
        ids = [d["_id"] for d in docs]
        self.postings.update_many({"_id": {"$in": ids}, "state": PENDING},
                                  {"$set": {"state": COMMITTED}})
        by_rest: dict[str, list[tuple[str, int]]] = {}
        for doc in docs:
            _, rest = self._guarded(doc)
            for e in rest:
                by_rest.setdefault(e.account, []).append((doc["_id"], e.amount))
        ops = []
        for account, all_items in by_rest.items():
            for items in _groups(all_items):
                flt = {"_id": account, "sealed_before": {"$lte": oldest}}
                sets = {}
                for pid, amount in items:
                    flt[f"marks.{pid}"] = {"$exists": False}
                    sets[f"marks.{pid}"] = amount
                ops.append(UpdateOne(flt, {"$inc": {"balance": sum(a for _, a in items),
                                                    "marks_count": len(items)},
                                           "$set": sets}))
        for start in range(0, len(ops), 1_000):
            self.accounts.bulk_write(ops[start:start + 1_000], ordered=False)
        # Whatever did not match (a seal, a repeat) is finished by `drive` one by one.
        current = {d["_id"]: d for d in self.postings.find({"_id": {"$in": ids}})}
        done = [d["_id"] for d in docs if current[d["_id"]]["state"] == COMMITTED]
        marked_everywhere = self._fully_marked(docs, done)
        rows = [row for doc in docs if doc["_id"] in marked_everywhere
                for row in self._entry_rows(doc, current[doc["_id"]]["created_at"])]
        for start in range(0, len(rows), 5_000):
            self._insert_rows(rows[start:start + 5_000])
        self.postings.update_many({"_id": {"$in": marked_everywhere}, "state": COMMITTED},
                                  {"$set": {"state": APPLIED, "applied_at": clock.stamp(),
                                            "entries_written": True},
                                   "$unset": {"open": ""}})
        # Seal the accounts this batch marked heavily (budgets, transit); an account with a
        # mark or two waits for the recovery timer's sweep.
        busy = sorted(a for a, items in [*by_account.items(), *by_rest.items()]
                      if len(items) >= 50)
        if busy:
            self.seal_many(busy)

    def _fully_marked(self, docs: list[dict[str, Any]], ids: list[str]) -> list[str]:
        """Postings (of `ids`) whose every entry carries its numeric mark."""
        wanted = set(ids)
        accounts = {e["account"] for d in docs if d["_id"] in wanted for e in d["entries"]}
        marks: dict[str, dict[str, Any]] = {}
        account_list = list(accounts)
        for start in range(0, len(account_list), 1_000):
            for acc in self.accounts.find({"_id": {"$in": account_list[start:start + 1_000]}},
                                          {"marks": 1}):
                marks[acc["_id"]] = acc.get("marks") or {}
        out = []
        for doc in docs:
            if doc["_id"] not in wanted:
                continue
            if all(isinstance(marks.get(e["account"], {}).get(doc["_id"]), int)
                   for e in doc["entries"]):
                out.append(doc["_id"])
        return out

    # -- sealing and recovery -----------------------------------------------------------
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
        pids = sorted({pid for acc in accounts for pid in (acc.get("marks") or {})})
        final: set[str] = set()
        for start in range(0, len(pids), 1_000):
            # by `_id` alone: nx-27017 scans when other conditions join an `$in`
            final.update(p["_id"] for p in self.postings.find(
                {"_id": {"$in": pids[start:start + 1_000]}}, {"state": 1, "created_at": 1})
                if p["state"] in FINAL_STATES and p["created_at"] < horizon)
        ops, dropped = [], 0
        for acc in accounts:
            gone = [pid for pid in (acc.get("marks") or {}) if pid in final]
            if not gone:
                continue
            if horizon > acc["sealed_before"]:  # raise the seal first (never lower it)
                ops.append(UpdateOne({"_id": acc["_id"], "sealed_before": acc["sealed_before"]},
                                     {"$set": {"sealed_before": horizon}}))
            # then drop marks, only while the seal covers them, each group only if all its
            # marks are still there (so marks_count stays exact); nx-27017 silently ignores
            # a $unset of more than ~126 paths, hence groups of 100.
            for group in _groups(gone, 100):
                ops.append(UpdateOne(
                    {"_id": acc["_id"], "sealed_before": {"$gte": horizon},
                     **{f"marks.{pid}": {"$exists": True} for pid in group}},
                    {"$unset": {f"marks.{pid}": "" for pid in group},
                     "$inc": {"marks_count": -len(group)}}))
            dropped += len(gone)
        if not ops:
            return 0
        result = self.accounts.bulk_write(ops, ordered=True)
        return dropped if result.modified_count == len(ops) else -1

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

    # -- reading the books --------------------------------------------------------------
    def balance_at(self, account_id: str, at: str) -> int:
        """The sum of the account's entries up to and including time `at`."""
        rows = list(self.entries.aggregate([
            {"$match": {"account": account_id, "at": {"$lte": at}}},
            {"$group": {"_id": "$account", "total": {"$sum": "$amount"}}}]))
        return int(rows[0]["total"]) if rows else 0

    def sums_by_account(self, match: dict[str, Any]) -> dict[str, int]:
        rows = self.entries.aggregate([{"$match": match},
                                       {"$group": {"_id": "$account",
                                                   "total": {"$sum": "$amount"}}}])
        return {r["_id"]: int(r["total"]) for r in rows}

    def category_sums(self, account_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """{account: {category: sum of its entries}} (one group-by per account: nx-27017
        groups by a single field only)."""
        out: dict[str, dict[str, int]] = {}
        for account_id in account_ids:
            rows = self.entries.aggregate([
                {"$match": {"account": account_id}},
                {"$group": {"_id": "$category", "total": {"$sum": "$amount"}}}])
            out[account_id] = {r["_id"]: int(r["total"]) for r in rows}
        return out

    def history(self, account_id: str, limit: int = 50, after: str | None = None,
                until: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Entries of an account in time order, each with the balance after it."""
        flt: dict[str, Any] = {"account": account_id}
        key_range: dict[str, Any] = {}
        if after:
            key_range["$gt"] = after
        if until:
            key_range["$lte"] = sort_key(until, "~")
        if key_range:
            flt["key"] = key_range
        rows = list(self.entries.find(flt).sort("key", ASCENDING).limit(limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        running = 0
        if rows:
            before = list(self.entries.aggregate([
                {"$match": {"account": account_id, "key": {"$lt": rows[0]["key"]}}},
                {"$group": {"_id": "$account", "total": {"$sum": "$amount"}}}]))
            running = int(before[0]["total"]) if before else 0
        for row in rows:
            running += int(row["amount"])
            row["balance_after"] = running
        return rows, (rows[-1]["key"] if more and rows else None)


def posting_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {"posting_id": doc["_id"], "state": doc["state"], "kind": doc["kind"],
            "category": doc["category"], "district": doc["district"], "memo": doc.get("memo"),
            "created_at": doc["created_at"], "applied_at": doc.get("applied_at"),
            "entries": [{"account": e["account"], "amount_fen": int(e["amount"])}
                        for e in doc["entries"]],
            "total_fen": int(doc.get("total") or 0), "refusal": doc.get("refusal"),
            "reverses": doc.get("reverses"), "reversed_by": doc.get("reversed_by"),
            "refs": doc.get("refs"), "actor": doc.get("actor")}


def account_view(doc: dict[str, Any], balance: int | None = None, at: str | None = None
                 ) -> dict[str, Any]:
    return {"account_id": doc["_id"], "kind": doc["kind"], "district": doc["district"],
            "term": doc["term"], "source": doc.get("source"), "tutor_id": doc.get("tutor_id"),
            "name": doc.get("name"), "floor_fen": doc.get("floor"),
            "balance_fen": int(doc["balance"]) if balance is None else balance, "at": at}


def entry_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"entry_id": row["_id"], "account": row["account"], "amount_fen": int(row["amount"]),
            "balance_after_fen": int(row["balance_after"]), "at": row["at"],
            "posting_id": row["posting_id"], "kind": row["kind"], "category": row["category"],
            "memo": row.get("memo")}
