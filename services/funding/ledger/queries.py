"""Reading the books: balances now and at a time, sums by account and category, an
account's history with its running balance (docs/ledger.md, "Reading the books")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING

from services.funding.ledger.books import Books
from services.kit.errors import NotFound
from services.kit.pages import sort_key, trim


class Queries(Books):
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

    def balance_at(self, account_id: str, at: str) -> int:
        """The sum of the account's entries up to and including time `at`."""
        return self._sum({"account": account_id, "at": {"$lte": at}})

    def sums_by_account(self, match: dict[str, Any]) -> dict[str, int]:
        rows = self.entries.aggregate([{"$match": match},
                                       {"$group": {"_id": "$account",
                                                   "total": {"$sum": "$amount"}}}])
        return {r["_id"]: int(r["total"]) for r in rows}

    def category_sums(self, account_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """{account: {category: sum of its entries}} (one group-by per account: nx-27017
        groups by a single field only; kit/mongo.py, "nx-27017")."""
        out: dict[str, dict[str, int]] = {}
        for account_id in account_ids:
            rows = self.entries.aggregate([
                {"$match": {"account": account_id}},
                {"$group": {"_id": "$category", "total": {"$sum": "$amount"}}}])
            out[account_id] = {r["_id"]: int(r["total"]) for r in rows}
        return out

    def history(self, account_id: str, limit: int = 50, after: str | None = None,
                until: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """Entries of an account in time order, each with the balance after it.

        A page as kit.pages cuts it; `until` ends the history at a time (inclusive).
        """
        flt: dict[str, Any] = {"account": account_id}
        key_range: dict[str, Any] = {}
        if after:
            key_range["$gt"] = after
        if until:
            key_range["$lte"] = sort_key(until, "~")
        if key_range:
            flt["key"] = key_range
        rows, cursor = trim(list(self.entries.find(flt).sort("key", ASCENDING)
                                 .limit(limit + 1)), limit)
        running = self._sum({"account": account_id, "key": {"$lt": rows[0]["key"]}}
                            ) if rows else 0
        for row in rows:
            running += int(row["amount"])
            row["balance_after"] = running
        return rows, cursor

    def _sum(self, match: dict[str, Any]) -> int:
        """The sum of the entries `match` finds (always of one account)."""
        rows = list(self.entries.aggregate([
            {"$match": match}, {"$group": {"_id": "$account", "total": {"$sum": "$amount"}}}]))
        return int(rows[0]["total"]) if rows else 0
