"""The funding service's entrypoints: check the caller, validate, call the domain, answer.

Every RPC takes the gateway's signed `actor`, verified first (kit.actor); only `finance`
staff may call, and each acts for the district named by their token's `org`
(funding/staff.py). Another district's records answer 404, as if they did not exist.
Creating calls take the caller's Idempotency-Key as `key` and bind it (funding/requests.py).
Files (CSV, XLSX) travel as {filename, content_type, text|base64}.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from nameko.rpc import rpc
from nameko.timer import timer

from services.contracts.funding import (
    AccountQuery,
    AccrualQuery,
    BalanceQuery,
    BudgetQuery,
    EntryQuery,
    FindingQuery,
    FundRequest,
    PayoutLineQuery,
    PayoutRunQuery,
    PayoutRunRequest,
    RateCardQuery,
    RateCardRequest,
    RecoverRequest,
    ReportCsvQuery,
    ReverseRequest,
    StatementQuery,
    TransferRequest,
    VisitSelection,
)
from services.contracts.terms import TERM_PATTERN
from services.funding import accruals, exports, payouts, rate_cards, reconciliation
from services.funding.ledger import account_view, entry_view, posting_view
from services.funding.repository import FundingRepository
from services.funding.staff import finance_staff
from services.kit.actor import Actors
from services.kit.boundary import load
from services.kit.context import LogContext
from services.kit.errors import NotFound, validation_error
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.migrations import checked_mapping
from services.kit.mongo import Store
from services.kit.pages import page

log = logging.getLogger("kepu.funding")


def listing(rows: list[dict[str, Any]], cursor: str | None, view: Any) -> dict[str, Any]:
    return {"items": [view(r) for r in rows], "next_cursor": cursor}


def term_of(text: str) -> str:
    if not TERM_PATTERN.match(text or ""):
        raise validation_error("term", "a term like 2026-autumn or 2027-spring")
    return text


def text_file(filename: str, text: str) -> dict[str, Any]:
    return {"filename": filename, "content_type": "text/csv; charset=utf-8", "text": text}


def binary_file(filename: str, content_type: str, data: bytes) -> dict[str, Any]:
    return {"filename": filename, "content_type": content_type,
            "base64": base64.b64encode(data).decode()}


class FundingService(Health):
    name = "funding"
    store = Store(FundingRepository)
    log_context = LogContext()
    actors = Actors()

    def _staff(self, actor: Any) -> tuple[str, str]:
        """(district, sub) of the verified finance caller; Forbidden for anyone else."""
        return finance_staff(self.actors(actor))

    # -- budgets and the ledger ---------------------------------------------------------
    @rpc
    def fund_budget(self, actor: dict[str, Any], payload: dict[str, Any],
                    key: str | None = None) -> dict[str, Any]:
        district, sub = self._staff(actor)
        data = load(FundRequest, payload)
        return posting_view(self.store.budgets.fund(district, sub, data, key))

    @rpc
    def transfer_budget(self, actor: dict[str, Any], payload: dict[str, Any],
                        key: str | None = None) -> dict[str, Any]:
        district, sub = self._staff(actor)
        data = load(TransferRequest, payload)
        return posting_view(self.store.budgets.transfer(district, sub, data, key))

    @rpc
    def budgets(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        term = load(BudgetQuery, query)["term"]
        return {"items": self.store.budgets.summary(district, term), "next_cursor": None}

    @rpc
    def reverse_posting(self, actor: dict[str, Any], posting_id: str,
                        payload: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        district, sub = self._staff(actor)
        reason = load(ReverseRequest, payload)["reason"]
        return posting_view(self.store.budgets.reverse(district, sub, posting_id, reason,
                                                       key))

    @rpc
    def get_posting(self, actor: dict[str, Any], posting_id: str) -> dict[str, Any]:
        district, _ = self._staff(actor)
        doc = self.store.ledger.postings.find_one({"_id": posting_id, "district": district})
        if doc is None:
            raise NotFound(f"posting {posting_id} not found", code="posting-not-found")
        return posting_view(doc)

    @rpc
    def list_accounts(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        q = load(AccountQuery, query)
        flt: dict[str, Any] = {"district": district}
        for name in ("term", "kind"):
            if q.get(name):
                flt[name] = q[name]
        rows, cursor = page(self.store.ledger.accounts, flt, q["limit"], q.get("cursor"),
                            {"marks": 0}, key="_id")
        return listing(rows, cursor, account_view)

    def _account(self, district: str, account_id: str) -> dict[str, Any]:
        doc = self.store.ledger.account(account_id)
        if doc["district"] != district:
            raise NotFound(f"account {account_id} not found", code="account-not-found")
        return doc

    @rpc
    def get_account(self, actor: dict[str, Any], account_id: str, query: dict[str, Any]
                    ) -> dict[str, Any]:
        """An account with its balance now, or at `at` (the sum of its entries up to then)."""
        district, _ = self._staff(actor)
        at = load(BalanceQuery, query).get("at")
        doc = self._account(district, account_id)
        if at is None:
            return account_view(doc)
        return account_view(doc, self.store.ledger.balance_at(account_id, at), at)

    @rpc
    def account_entries(self, actor: dict[str, Any], account_id: str,
                        query: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        q = load(EntryQuery, query)
        self._account(district, account_id)
        rows, cursor = self.store.ledger.history(account_id, q["limit"], q.get("cursor"),
                                                 q.get("until"))
        return listing(rows, cursor, entry_view)

    @rpc
    def trial_balance(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        """Every account of a term with its balance (now, or at `at`); they sum to zero."""
        district, _ = self._staff(actor)
        term = term_of(query.get("term", ""))
        at = load(BalanceQuery, {k: v for k, v in query.items() if k == "at"}).get("at")
        ledger = self.store.ledger
        docs = list(ledger.accounts.find({"district": district, "term": term}, {"marks": 0})
                    .sort("_id", 1))
        if at is None:
            items = [account_view(d) for d in docs]
        else:
            sums = ledger.sums_by_account({"district": district, "term": term,
                                           "at": {"$lte": at}})
            items = [account_view(d, sums.get(d["_id"], 0), at) for d in docs]
        return {"at": at, "accounts": items, "total_fen": sum(i["balance_fen"] for i in items)}

    # -- rate cards ---------------------------------------------------------------------
    @rpc
    def create_rate_card(self, actor: dict[str, Any], payload: dict[str, Any],
                         key: str | None = None) -> dict[str, Any]:
        district, sub = self._staff(actor)
        data = load(RateCardRequest, payload)
        return rate_cards.view(self.store.cards.create(district, data, sub, key))

    @rpc
    def rate_cards(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        on = load(RateCardQuery, query).get("on")
        if on is not None:
            card = self.store.cards.in_force(district, on)
            cards = [card] if card else []
        else:
            cards = self.store.cards.all(district)
        return {"items": [rate_cards.view(c) for c in cards], "next_cursor": None}

    # -- accruals -----------------------------------------------------------------------
    @subscribe("booking.tutor_visit_confirmed")
    def on_visit_confirmed(self, event: dict[str, Any]) -> None:
        self.store.accruals.on_confirmed(self.store.districts.resolve(event["data"]))

    @subscribe("booking.tutor_visit_cancelled")
    def on_visit_cancelled(self, event: dict[str, Any]) -> None:
        data = self.store.districts.resolve(event["data"])
        self.store.accruals.on_cancelled(data, data["previous_status"])

    # -- districts: names to ids (`kepu migrate districts`, kit.migrations) ----------------
    @rpc
    def district_names(self, actor: dict[str, Any]) -> list[str]:
        self.actors(actor).require(detail="only an admin migrates districts")
        return sorted(self.store.districts.names())

    @rpc
    def adopt_district_ids(self, mapping: dict[str, str], actor: dict[str, Any]
                           ) -> dict[str, int]:
        self.actors(actor).require(detail="only an admin migrates districts")
        return self.store.districts.adopt(checked_mapping(mapping))

    @rpc
    def list_accruals(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        rows, cursor = self.store.accruals.list(district, load(AccrualQuery, query))
        return listing(rows, cursor, accruals.view)

    @rpc
    def get_accrual(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        district, _ = self._staff(actor)
        return accruals.view(self.store.accruals.get(district, visit_id))

    @rpc
    def approve_accruals(self, actor: dict[str, Any], payload: dict[str, Any]
                         ) -> dict[str, Any]:
        district, sub = self._staff(actor)
        data = load(VisitSelection, payload)
        return self.store.accruals.approve(district, data.get("visit_ids"), data.get("term"),
                                           sub)

    @rpc
    def retry_accruals(self, actor: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        data = load(VisitSelection, payload)
        return self.store.accruals.retry(district, data.get("visit_ids"), data.get("term"))

    @rpc
    def recover_clawback(self, actor: dict[str, Any], visit_id: str, payload: dict[str, Any]
                         ) -> dict[str, Any]:
        district, sub = self._staff(actor)
        memo = load(RecoverRequest, payload)["memo"]
        return accruals.view(self.store.accruals.recover(district, visit_id, sub, memo))

    # -- payout runs --------------------------------------------------------------------
    @rpc
    def create_payout_run(self, actor: dict[str, Any], payload: dict[str, Any],
                          key: str | None = None) -> dict[str, Any]:
        district, sub = self._staff(actor)
        data = load(PayoutRunRequest, payload)
        return payouts.run_view(self.store.payouts.create(district, data["term"], sub,
                                                          data.get("note"), key))

    @rpc
    def list_payout_runs(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        rows, cursor = self.store.payouts.list(district, load(PayoutRunQuery, query))
        return listing(rows, cursor, payouts.run_view)

    @rpc
    def get_payout_run(self, actor: dict[str, Any], run_id: str) -> dict[str, Any]:
        district, _ = self._staff(actor)
        return payouts.run_view(self.store.payouts.get(district, run_id))

    @rpc
    def payout_run_lines(self, actor: dict[str, Any], run_id: str, query: dict[str, Any]
                         ) -> dict[str, Any]:
        district, _ = self._staff(actor)
        rows, cursor = self.store.payouts.list_lines(district, run_id,
                                                     load(PayoutLineQuery, query))
        return listing(rows, cursor, payouts.line_view)

    @rpc
    def payout_lines(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        """Payout lines of every run of the district, e.g. `status=sent`: not yet paid."""
        district, _ = self._staff(actor)
        q = load(PayoutLineQuery, query)
        flt: dict[str, Any] = {"district": district}
        if q.get("status"):
            flt["status"] = q["status"]
        rows, cursor = page(self.store.payouts.lines, flt, q["limit"], q.get("cursor"))
        return listing(rows, cursor, payouts.line_view)

    @rpc
    def approve_payout_run(self, actor: dict[str, Any], run_id: str) -> dict[str, Any]:
        district, sub = self._staff(actor)
        return payouts.run_view(self.store.payouts.approve(district, run_id, sub))

    @rpc
    def export_payout_run(self, actor: dict[str, Any], run_id: str) -> dict[str, Any]:
        district, sub = self._staff(actor)
        return payouts.run_view(self.store.payouts.export(district, run_id, sub))

    @rpc
    def discard_payout_run(self, actor: dict[str, Any], run_id: str) -> dict[str, Any]:
        district, sub = self._staff(actor)
        return payouts.run_view(self.store.payouts.discard(district, run_id, sub))

    @rpc
    def payout_file(self, actor: dict[str, Any], run_id: str) -> dict[str, Any]:
        district, _ = self._staff(actor)
        return text_file(*self.store.payouts.payout_file(district, run_id))

    # -- reconciliation -----------------------------------------------------------------
    @rpc
    def import_statement(self, actor: dict[str, Any], text: str, key: str | None = None
                         ) -> dict[str, Any]:
        district, sub = self._staff(actor)
        doc = self.store.reconciliation.import_statement(district, sub, text, key)
        return self._statement(doc)

    def _statement(self, doc: dict[str, Any]) -> dict[str, Any]:
        found, cut = self.store.reconciliation.all_findings(doc["_id"],
                                                            reconciliation.REPORT_ITEMS)
        return reconciliation.statement_view(doc, found, cut)

    @rpc
    def list_statements(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        rows, cursor = self.store.reconciliation.list(district, load(StatementQuery, query))
        return listing(rows, cursor, reconciliation.statement_view)

    @rpc
    def get_statement(self, actor: dict[str, Any], statement_id: str) -> dict[str, Any]:
        district, _ = self._staff(actor)
        return self._statement(self.store.reconciliation.get(district, statement_id))

    @rpc
    def statement_findings(self, actor: dict[str, Any], statement_id: str,
                           query: dict[str, Any]) -> dict[str, Any]:
        district, _ = self._staff(actor)
        rows, cursor = self.store.reconciliation.findings_page(
            district, statement_id, load(FindingQuery, query))
        return listing(rows, cursor, reconciliation.finding_view)

    @rpc
    def statement_file(self, actor: dict[str, Any], statement_id: str, fmt: str
                       ) -> dict[str, Any]:
        district, _ = self._staff(actor)
        doc = self.store.reconciliation.get(district, statement_id)
        found, _ = self.store.reconciliation.all_findings(statement_id)
        if fmt == "csv":
            return text_file(f"reconciliation-{statement_id}.csv", exports.statement_csv(found))
        return binary_file(f"reconciliation-{statement_id}.xlsx", exports.XLSX_TYPE,
                           exports.statement_xlsx(reconciliation.statement_view(doc), found))

    # -- reports ------------------------------------------------------------------------
    @rpc
    def term_report(self, actor: dict[str, Any], term: str) -> dict[str, Any]:
        district, _ = self._staff(actor)
        return self.store.report(district, term_of(term))

    @rpc
    def report_file(self, actor: dict[str, Any], term: str, fmt: str, query: dict[str, Any]
                    ) -> dict[str, Any]:
        district, _ = self._staff(actor)
        report = self.store.report(district, term_of(term))
        if fmt == "csv":
            by = load(ReportCsvQuery, query)["by"]
            return text_file(f"funding-{term}-by-{by}.csv", exports.report_csv(report, by))
        return binary_file(f"funding-{term}.xlsx", exports.XLSX_TYPE,
                           exports.report_xlsx(report))

    # -- recovery -----------------------------------------------------------------------
    @timer(interval=5)
    def recover(self) -> None:
        """Finish postings, accruals and payout runs a dead worker left half-done."""
        done = self.store.recover()
        if any(done.values()):
            log.warning("recovered unfinished work", extra=done)
