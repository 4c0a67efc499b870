"""The ledger: double-entry, append-only, in integer fen, correct without transactions.

Read docs/ledger.md first: the model, postings and their idempotency ids, reversals,
seals, the bulk path and why each is built the way it is. The parts:

    model     what a posting is: states, entries, checks, the rows it leaves
    books     the collections; opening accounts; writing entry rows
    seals     dropping marks of final postings without allowing a second apply
    postings  the one-by-one state machine, reversals, recovery of what a crash left
    bulk      many postings with a few bulk writes, the same outcome
    queries   balances now and at a time, sums, an account's history
    views     postings, accounts and entries as callers see them
"""

from __future__ import annotations

from services.funding.ledger.bulk import BulkPostings
from services.funding.ledger.model import (
    APPLIED,
    COMMITTED,
    FINAL_STATES,
    OPEN_STATES,
    PENDING,
    REFUSED,
    REFUSING,
    VOID,
    Entry,
    LedgerError,
    Reload,
)
from services.funding.ledger.queries import Queries
from services.funding.ledger.views import account_view, entry_view, posting_view

__all__ = ["APPLIED", "COMMITTED", "FINAL_STATES", "OPEN_STATES", "PENDING", "REFUSED",
           "REFUSING", "VOID", "Entry", "Ledger", "LedgerError", "Reload", "account_view",
           "entry_view", "posting_view"]


class Ledger(BulkPostings, Queries):
    """The funding service's books: post (one or many), reverse, seal, recover, read."""
