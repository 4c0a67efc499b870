"""The funding service's data: the ledger and the domain objects built on it."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from services.funding import reports
from services.funding.accruals import Accruals
from services.funding.budgets import Budgets
from services.funding.districts import FundingDistricts
from services.funding.ledger import Ledger
from services.funding.payouts import Payouts
from services.funding.rate_cards import RateCards
from services.funding.reconciliation import Reconciliation
from services.funding.requests import Requests
from services.kit.config import Settings
from services.kit.mongo import Repository
from services.kit.request_keys import RequestKeys


class FundingRepository(Repository):
    # accruals carry `funding.subsidy_paid`, staged in the write that marks them paid
    outbox_collections = ("accruals",)

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(db, settings)
        self.requests = Requests(RequestKeys(self.db.request_keys))
        self.ledger = Ledger(self.db)
        self.cards = RateCards(self.db, self.requests)
        self.accruals = Accruals(self.db, self.ledger, self.cards)
        self.budgets = Budgets(self.ledger, self.requests)
        self.payouts = Payouts(self.db, self.ledger, self.requests)
        self.reconciliation = Reconciliation(self.db, self.ledger, self.requests)
        self.districts = FundingDistricts(self.db)  # names to ids (kepu migrate districts)

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        for part in (self.requests, self.ledger, self.cards, self.accruals, self.payouts,
                     self.reconciliation):
            part.ensure_indexes()

    def recover(self) -> dict[str, int]:
        """Finish whatever a dead worker left half-done (the service's timer calls this)."""
        return {"postings": self.ledger.recover(), "accruals": self.accruals.resume(),
                "payout_runs": self.payouts.resume()}

    def report(self, district: str, term: str) -> dict[str, Any]:
        return reports.term_report(self.db, self.ledger, district, term)
