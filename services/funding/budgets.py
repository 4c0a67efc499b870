"""Budgets: finance staff fund a district's term budget from a source, and move money.

Both are plain postings. Funding: `source` -> `budget` for (term, source); a transfer:
budget -> budget, refused when the giving budget cannot cover it. The caller's
Idempotency-Key is bound to the posting id (funding/requests.py), so a repeated request
cannot fund twice even past the gateway's memory. A mistaken funding or transfer is
corrected by its reversal, which is refused in turn if the money was already spent.
"""

from __future__ import annotations

from typing import Any

from services.funding import accounts as chart
from services.funding.ledger import APPLIED, Entry, Ledger
from services.funding.requests import Requests
from services.kit.errors import Conflict, NotFound
from services.kit.ids import new_id

REVERSIBLE = {"funding": "funding_reversal", "transfer": "transfer_reversal"}


def refused(doc: dict[str, Any]) -> Conflict:
    refusal = doc.get("refusal") or {}
    return Conflict(refusal.get("detail") or "the posting was refused",
                    {"amount_fen": [refusal.get("detail") or "refused"]},
                    code=refusal.get("code") or "posting-refused")


class Budgets:
    def __init__(self, ledger: Ledger, requests: Requests) -> None:
        self.ledger = ledger
        self.requests = requests

    def fund(self, district: str, sub: str, data: dict[str, Any], key: str | None
             ) -> dict[str, Any]:
        term, source_name, amount = data["term"], data["source"], data["amount_fen"]
        memo = data["memo"] + (f" (ref {data['reference']})" if data.get("reference") else "")
        doc = self.ledger.post(
            self.requests.bind("funding", district, sub, key, new_id("funding"), data),
            [Entry(chart.source(district, term, source_name), -amount),
             Entry(chart.budget(district, term, source_name), amount)],
            kind="funding", category="funding", district=district, memo=memo, actor=sub,
            refs={"term": term, "source": source_name, "reference": data.get("reference")})
        if doc["state"] != APPLIED:  # pragma: no cover - a funding has no guarded debit
            raise refused(doc)
        return doc

    def transfer(self, district: str, sub: str, data: dict[str, Any], key: str | None
                 ) -> dict[str, Any]:
        giver = chart.budget(district, data["from_term"], data["from_source"])
        taker = chart.budget(district, data["to_term"], data["to_source"])
        amount = data["amount_fen"]
        doc = self.ledger.post(self.requests.bind("transfer", district, sub, key,
                                                  new_id("transfer"), data),
                               [Entry(giver, -amount), Entry(taker, amount)],
                               kind="transfer", category="transfer", district=district,
                               memo=data["memo"], actor=sub,
                               refs={"from": giver, "to": taker})
        if doc["state"] != APPLIED:
            raise refused(doc)
        return doc

    def reverse(self, district: str, sub: str, posting_id_: str, reason: str,
                key: str | None = None) -> dict[str, Any]:
        original = self.ledger.posting(posting_id_)
        if original["district"] != district:  # another district's: as if it did not exist
            raise NotFound(f"posting {posting_id_} not found", code="posting-not-found")
        kind = REVERSIBLE.get(original["kind"])
        if kind is None:
            raise Conflict(f"a {original['kind']} posting is not reversed by hand: accruals "
                           "reverse when their visit is cancelled, payouts never",
                           code="not-reversible")
        bound = self.requests.bind("reversal", district, sub, key,
                                   self.ledger.next_reversal_id(posting_id_),
                                   {"posting_id": posting_id_, "reason": reason})
        doc = self.ledger.reverse(posting_id_, kind=kind, memo=reason, actor=sub,
                                  reversal_id=bound if key else None)
        if doc["state"] != APPLIED:
            raise refused(doc)
        return doc

    def summary(self, district: str, term: str) -> list[dict[str, Any]]:
        """Each source's budget for a term: balance and where it came from and went."""
        budgets = [chart.budget(district, term, s) for s in chart.SOURCES]
        balances = self.ledger.balances(budgets)
        flows = self.ledger.category_sums(budgets)
        rows = []
        for source_name, account in zip(chart.SOURCES, budgets, strict=True):
            by_category = flows.get(account, {})
            rows.append({"term": term, "source": source_name, "account_id": account,
                         "balance_fen": balances[account],
                         "funded_fen": by_category.get("funding", 0),
                         "transferred_fen": by_category.get("transfer", 0),
                         "subsidies_fen": by_category.get("subsidy", 0)})
        return rows
