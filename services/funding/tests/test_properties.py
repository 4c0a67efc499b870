"""The ledger's invariants under any sequence of the flows finance and booking drive.

For any interleaving of fundings, transfers, funding reversals, visit confirmations
(accruals), cancellations (reversals and clawbacks), retries, approvals, payout runs
(create, approve, discard, export), bank statements and clawback recoveries:
every account's balance equals the sum of its entries, all entries sum to zero, no
budget is ever below zero, and no posting is left open.
"""

from __future__ import annotations

import csv
import io
import itertools
import uuid
from datetime import date

import pymongo
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from services.funding.ledger import OPEN_STATES
from services.funding.repository import FundingRepository
from services.kit.config import Settings
from services.kit.errors import Conflict, Forbidden

TERMS = ("2026-autumn", "2027-spring")
SOURCES = ("fiscal_subsidy", "service_fees", "collected_fees")
TUTORS = ("t1", "t2", "t3")
amounts = st.integers(min_value=1, max_value=60_000)
big_amounts = st.integers(min_value=10_000, max_value=300_000)
_districts = itertools.count()


@pytest.fixture(scope="module")
def shared_db(mongo_url):
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    name = f"prop_{uuid.uuid4().hex[:10]}"
    repo = FundingRepository(client[name], Settings())
    repo.ensure_indexes()
    yield client[name]
    client.drop_database(name)
    client.close()


_shared: dict[str, pymongo.database.Database] = {}


class FundingFlows(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.books = FundingRepository(_shared["db"], Settings())
        self.district = f"区{next(_districts)}-{uuid.uuid4().hex[:4]}"
        self.fundings: list[str] = []
        self.visits: list[dict] = []
        self.runs: list[str] = []
        self.books.cards.create(self.district, {
            "effective_from": date(2026, 1, 1), "rates": {"senior": 10_000, "junior": 3_333},
            "cap_per_visit_fen": 25_000, "cap_per_school_term_fen": 90_000, "note": None}, "m")

    # -- money in and around ------------------------------------------------------------
    @initialize(autumn=big_amounts, spring=big_amounts)
    def opening_budgets(self, autumn, spring):
        self.fund(TERMS[0], "fiscal_subsidy", autumn)
        self.fund(TERMS[1], "fiscal_subsidy", spring)

    @rule(term=st.sampled_from(TERMS), source=st.sampled_from(SOURCES),
          amount=amounts | big_amounts)
    def fund(self, term, source, amount):
        doc = self.books.budgets.fund(self.district, "fin-a", {
            "term": term, "source": source, "amount_fen": amount, "memo": "p"}, None)
        self.fundings.append(doc["_id"])

    @rule(src=st.sampled_from([(t, s) for t in TERMS for s in SOURCES]),
          dst=st.sampled_from([(t, s) for t in TERMS for s in SOURCES]), amount=amounts)
    def transfer(self, src, dst, amount):
        if src == dst:
            return
        try:
            self.books.budgets.transfer(self.district, "fin-a", {
                "from_term": src[0], "from_source": src[1], "to_term": dst[0],
                "to_source": dst[1], "amount_fen": amount, "memo": "p"}, None)
        except Conflict:
            pass  # refused: the giving budget could not cover it

    @precondition(lambda self: self.fundings)
    @rule(data=st.data())
    def reverse_funding(self, data):
        pid = data.draw(st.sampled_from(self.fundings))
        try:
            self.books.budgets.reverse(self.district, "fin-a", pid, "mistake")
        except Conflict:
            pass  # already spent, or already reversed and then refused

    # -- visits -------------------------------------------------------------------------
    @rule(tutor=st.sampled_from(TUTORS), term=st.sampled_from(TERMS),
          level=st.sampled_from(["senior", "junior", "expert"]),
          hours=st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]),
          school=st.sampled_from(["s1", "s2"]))
    def confirm(self, tutor, term, level, hours, school):
        v = {"visit_id": f"vis_{uuid.uuid4().hex[:12]}", "tutor_id": tutor,
             "tutor_name": tutor.upper(), "tutor_level": level, "venue_id": "v",
             "school_id": school, "district": self.district,
             "date": "2026-10-01" if term == TERMS[0] else "2027-03-01", "term": term,
             "hours": hours, "students": 30, "subject": None}
        self.books.accruals.on_confirmed(v)
        self.books.accruals.on_confirmed(dict(v))  # a replay changes nothing
        self.visits.append(v)

    @precondition(lambda self: self.visits)
    @rule(data=st.data())
    def cancel(self, data):
        v = data.draw(st.sampled_from(self.visits))
        self.books.accruals.on_cancelled(v, "confirmed")

    @rule(term=st.sampled_from(TERMS))
    def retry(self, term):
        self.books.accruals.retry(self.district, None, term)

    @rule(term=st.sampled_from(TERMS))
    def approve(self, term):
        self.books.accruals.approve(self.district, None, term, "fin-b")

    # -- payouts ------------------------------------------------------------------------
    @rule(term=st.sampled_from(TERMS))
    def create_run(self, term):
        try:
            self.runs.append(self.books.payouts.create(self.district, term, "fin-a", None)["_id"])
        except Conflict:
            pass  # nothing to pay

    @rule(term=st.sampled_from(TERMS), settle=st.booleans(), wrong=st.booleans())
    def pay_out(self, term, settle, wrong):
        """The whole path in one step: approve all, create, approve, export, (reconcile)."""
        self.approve(term)
        try:
            run = self.books.payouts.create(self.district, term, "fin-a", None)
        except Conflict:
            return
        self.runs.append(run["_id"])
        self.books.payouts.approve(self.district, run["_id"], "fin-b")
        self.books.payouts.export(self.district, run["_id"], "fin-b")
        if settle:
            self.bank_statement(wrong)

    @precondition(lambda self: self.runs)
    @rule(data=st.data(), who=st.sampled_from(["fin-a", "fin-b"]))
    def approve_run(self, data, who):
        try:
            self.books.payouts.approve(self.district, data.draw(st.sampled_from(self.runs)), who)
        except (Conflict, Forbidden):
            pass

    @precondition(lambda self: self.runs)
    @rule(data=st.data())
    def export_run(self, data):
        try:
            self.books.payouts.export(self.district, data.draw(st.sampled_from(self.runs)), "b")
        except Conflict:
            pass

    @precondition(lambda self: self.runs)
    @rule(data=st.data())
    def discard_run(self, data):
        try:
            self.books.payouts.discard(self.district, data.draw(st.sampled_from(self.runs)), "b")
        except Conflict:
            pass

    @rule(wrong=st.booleans())
    def bank_statement(self, wrong):
        sent = list(self.books.payouts.lines.find({"district": self.district,
                                                   "status": "sent"}))
        if not sent:
            return
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["reference", "amount_fen"])
        for n, line in enumerate(sent):
            writer.writerow([line["_id"], int(line["amount_fen"]) + (1 if wrong and n == 0
                                                                      else 0)])
        writer.writerow(["KPUNKNOWN-00001", 123])
        self.books.reconciliation.import_statement(self.district, "fin-a", out.getvalue())

    @precondition(lambda self: self.visits)
    @rule(data=st.data())
    def recover(self, data):
        v = data.draw(st.sampled_from(self.visits))
        try:
            self.books.accruals.recover(self.district, v["visit_id"], "fin-a", "repaid")
        except Conflict:
            pass

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def books_balance(self):
        ledger = self.books.ledger
        accounts = {a["_id"]: int(a["balance"]) for a in ledger.accounts.find(
            {"district": self.district}, {"balance": 1})}
        sums = ledger.sums_by_account({"district": self.district})
        assert {a: b for a, b in accounts.items() if b} == {a: s for a, s in sums.items() if s}
        assert sum(sums.values()) == 0
        budgets = [b for a, b in accounts.items() if a.startswith("budget|")]
        assert all(b >= 0 for b in budgets), budgets
        assert ledger.postings.count_documents({"district": self.district,
                                                "state": {"$in": list(OPEN_STATES)}}) == 0


def test_the_books_balance_after_any_sequence_of_flows(shared_db):
    _shared["db"] = shared_db
    run_state_machine_as_test(FundingFlows, settings=settings(
        max_examples=25, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
