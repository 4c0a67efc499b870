"""What a posting is: its states, its entries, the checks it passes, the rows it leaves.

Plain values and functions, no database (docs/ledger.md, "Postings").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.funding import accounts as chart
from services.kit import clock
from services.kit.pages import sort_key

PENDING, COMMITTED, APPLIED, REFUSING, REFUSED = (
    "pending", "committed", "applied", "refusing", "refused")
OPEN_STATES = (PENDING, COMMITTED, REFUSING)
FINAL_STATES = (APPLIED, REFUSED)
VOID = "void"
# Where seals start. Not "": nx-27017 compares time-like strings as times, and "" with none
# (kit/mongo.py, "nx-27017").
NEVER_SEALED = "1970-01-01T00:00:00.000000Z"

MAX_ENTRIES = 2_000
_POSTING_ID = re.compile(r"^[A-Za-z0-9_:\-]{1,160}$")


class LedgerError(Exception):
    """A programming error: an unknown account, an unbalanced posting."""


class Reload(Exception):
    """The posting changed under this worker; read it again and carry on from its state."""


@dataclass(frozen=True)
class Entry:
    account: str
    amount: int


def groups(items: list[Any], size: int = 200) -> list[list[Any]]:
    """Conditions per update stay well under nx-27017's expression depth limit (1000; see
    kit/mongo.py, "nx-27017")."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def entries_of(doc: dict[str, Any]) -> list[Entry]:
    return [Entry(e["account"], int(e["amount"])) for e in doc["entries"]]


def is_guarded(entry: Entry) -> bool:
    """A debit on a floored account (a budget): checked and taken before the commit."""
    return chart.floor_of(entry.account) is not None and entry.amount < 0


def split_guarded(doc: dict[str, Any]) -> tuple[list[Entry], list[Entry]]:
    """(guarded debits, everything else), each in a fixed order."""
    first, rest = [], []
    for e in entries_of(doc):
        (first if is_guarded(e) else rest).append(e)
    return sorted(first, key=lambda e: e.account), sorted(rest, key=lambda e: e.account)


def check(posting_id: str, entries: Sequence[Entry], category: str) -> None:
    """LedgerError unless the posting is well formed and balances to zero."""
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


def new_posting(posting_id: str, entries: Sequence[Entry], **fields: Any) -> dict[str, Any]:
    """The posting document as first inserted: `pending`, or `committed` when nothing in it
    can be refused (no guarded debit)."""
    now = clock.stamp()
    terms = sorted({chart.describe(e.account)["term"] for e in entries})
    guarded = any(is_guarded(e) for e in entries)
    return {"_id": posting_id, "state": PENDING if guarded else COMMITTED,
            "open": True, "created_at": now,
            "key": sort_key(now, posting_id),
            "entries": [{"account": e.account, "amount": e.amount} for e in entries],
            "terms": terms, "total": sum(e.amount for e in entries if e.amount > 0),
            **fields}


def entry_rows(doc: dict[str, Any], at: str) -> list[dict[str, Any]]:
    """The `entries` rows of an applied posting, one per entry, id `<posting>:<n>`."""
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


def same_entries(doc: dict[str, Any], entries: Sequence[Entry]) -> bool:
    """Does the stored posting carry exactly these entries (in any order)?"""
    return sorted((e.account, e.amount) for e in entries_of(doc)) == sorted(
        (e.account, e.amount) for e in entries)
