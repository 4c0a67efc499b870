"""The ledger's state machine: idempotent postings, refusals, reversals, seals, recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.funding import accounts as chart
from services.funding.ledger import APPLIED, REFUSED, VOID, Entry, LedgerError, Reload
from services.funding.ledger.model import new_posting
from services.kit import clock
from services.kit.errors import Conflict

D, T = "测试区", "2026-autumn"
SRC = chart.source(D, T, "fiscal_subsidy")
BUD = chart.budget(D, T, "fiscal_subsidy")
BUD2 = chart.budget(D, T, "service_fees")
PAY = chart.payable(D, T, "tut_1")


def fund(ledger, pid, amount, budget=BUD):
    return ledger.post(pid, [Entry(chart.source(D, T, budget.rsplit("|", 1)[1]), -amount),
                             Entry(budget, amount)],
                       kind="funding", category="funding", district=D)


def spend(ledger, pid, amount, budget=BUD):
    return ledger.post(pid, [Entry(budget, -amount), Entry(PAY, amount)],
                       kind="accrual", category="subsidy", district=D)


def sums(ledger):
    return ledger.sums_by_account({"district": D})


def test_a_posting_applies_once_and_writes_its_entries(ledger):
    first = fund(ledger, "f1", 10_000)
    again = fund(ledger, "f1", 10_000)
    assert first["state"] == again["state"] == APPLIED
    assert ledger.balances([BUD, SRC]) == {BUD: 10_000, SRC: -10_000}
    assert sums(ledger) == {BUD: 10_000, SRC: -10_000}
    assert ledger.entries.count_documents({"posting_id": "f1"}) == 2


def test_the_same_id_with_other_entries_is_a_conflict(ledger):
    fund(ledger, "f1", 10_000)
    with pytest.raises(Conflict):
        fund(ledger, "f1", 9_999)


def test_unbalanced_or_malformed_postings_are_programming_errors(ledger):
    with pytest.raises(LedgerError):
        ledger.post("x1", [Entry(BUD, 5), Entry(SRC, -4)], kind="k", category="funding",
                    district=D)
    with pytest.raises(LedgerError):
        ledger.post("x.2", [Entry(BUD, 5), Entry(SRC, -5)], kind="k", category="funding",
                    district=D)
    with pytest.raises(LedgerError):
        ledger.post("x3", [Entry(BUD, 5), Entry(SRC, -5)], kind="k", category="nope",
                    district=D)


def test_a_budget_never_goes_below_zero_and_the_refusal_says_why(ledger):
    fund(ledger, "f1", 1_000)
    refused = spend(ledger, "a1", 1_500)
    assert refused["state"] == REFUSED
    assert refused["refusal"]["code"] == "insufficient-funds"
    assert refused["refusal"]["balance"] == 1_000 and refused["refusal"]["needed"] == 1_500
    assert ledger.balances([BUD, PAY]) == {BUD: 1_000, PAY: 0}
    assert ledger.entries.count_documents({"posting_id": "a1"}) == 0
    # the refusal is final for that id: the same id answers the same, even once funded
    fund(ledger, "f2", 5_000)
    assert spend(ledger, "a1", 1_500)["state"] == REFUSED
    assert spend(ledger, "a2", 1_500)["state"] == APPLIED


def test_a_refused_posting_gives_back_debits_already_taken(ledger):
    fund(ledger, "f1", 1_000)
    fund(ledger, "f2", 100, budget=BUD2)
    two = ledger.post("a1", [Entry(BUD, -800), Entry(BUD2, -200), Entry(PAY, 1_000)],
                      kind="accrual", category="subsidy", district=D)
    assert two["state"] == REFUSED
    assert ledger.balances([BUD, BUD2, PAY]) == {BUD: 1_000, BUD2: 100, PAY: 0}
    marks = ledger.accounts.find_one({"_id": BUD})["marks"]
    assert marks["a1"] == VOID  # a late worker can no longer take the debit


def test_reversal_mirrors_the_original_once(ledger):
    fund(ledger, "f1", 1_000)
    spend(ledger, "a1", 400)
    reversal = ledger.reverse("a1", kind="accrual_reversal", memo="visit cancelled")
    assert reversal["state"] == APPLIED and reversal["reverses"] == "a1"
    assert ledger.reverse("a1", kind="accrual_reversal")["_id"] == reversal["_id"]
    assert ledger.balances([BUD, PAY]) == {BUD: 1_000, PAY: 0}
    assert ledger.posting("a1")["reversed_by"] == "reversal:a1"


def test_reversing_a_funding_already_spent_is_refused_until_the_money_is_back(ledger):
    fund(ledger, "f1", 1_000)
    spend(ledger, "a1", 900)
    assert ledger.reverse("f1", kind="funding_reversal")["state"] == REFUSED
    assert ledger.balances([BUD]) == {BUD: 100}
    ledger.reverse("a1", kind="accrual_reversal")
    again = ledger.reverse("f1", kind="funding_reversal")
    assert again["state"] == APPLIED and again["_id"] == "reversal:f1:2"
    assert ledger.reverse("f1", kind="funding_reversal")["_id"] == "reversal:f1:2"
    assert ledger.balances([BUD]) == {BUD: 0}


def test_balance_at_a_time_and_history_with_running_balance(ledger):
    now = {"t": datetime(2026, 9, 1, 8, tzinfo=UTC)}
    clock.set_clock(lambda: now["t"])
    try:
        fund(ledger, "f1", 1_000)
        now["t"] += timedelta(hours=1)
        spend(ledger, "a1", 300)
        now["t"] += timedelta(hours=1)
        spend(ledger, "a2", 200)
    finally:
        clock.set_clock(None)
    assert ledger.balance_at(BUD, "2026-09-01T08:30:00.000000Z") == 1_000
    assert ledger.balance_at(BUD, "2026-09-01T09:00:00.000000Z") == 700
    assert ledger.balance_at(BUD, "2026-09-01T07:00:00.000000Z") == 0
    page, cursor = ledger.history(BUD, limit=2)
    assert [r["balance_after"] for r in page] == [1_000, 700] and cursor
    rest, end = ledger.history(BUD, limit=2, after=cursor)
    assert [r["balance_after"] for r in rest] == [500] and end is None


def test_a_posting_left_half_applied_is_finished_by_recovery(ledger):
    fund(ledger, "f1", 1_000)
    # a worker died after the budget debit, before the commit
    doc = new_posting("a1", [Entry(BUD, -600), Entry(PAY, 600)], kind="accrual",
                      category="subsidy", district=D, memo="", refs=None, actor=None,
                      reverses=None)
    doc["created_at"] = "2026-01-01T00:00:00.000000Z"
    ledger.postings.insert_one(doc)
    assert ledger._apply(doc, Entry(BUD, -600))[0] == "applied"
    assert ledger.balances([BUD, PAY]) == {BUD: 400, PAY: 0}
    assert ledger.recover(older_than_s=0) == 1
    assert ledger.posting("a1")["state"] == APPLIED
    assert ledger.balances([BUD, PAY]) == {BUD: 400, PAY: 600}
    assert sums(ledger) == {BUD: 400, SRC: -1_000, PAY: 600}


def test_two_workers_on_one_posting_apply_it_once(ledger):
    fund(ledger, "f1", 1_000)
    doc = new_posting("a1", [Entry(BUD, -600), Entry(PAY, 600)], kind="accrual",
                      category="subsidy", district=D, memo="", refs=None, actor=None,
                      reverses=None)
    ledger.postings.insert_one(doc)
    ledger.drive(dict(doc))
    ledger.drive(dict(doc))  # a stale copy still saying "pending"
    assert ledger.balances([BUD, PAY]) == {BUD: 400, PAY: 600}


def test_seal_drops_marks_and_a_late_repeat_cannot_apply_twice(ledger):
    fund(ledger, "f1", 1_000)
    stale = new_posting("a1", [Entry(BUD, -100), Entry(PAY, 100)], kind="accrual",
                        category="subsidy", district=D, memo="", refs=None, actor=None,
                        reverses=None)
    ledger.postings.insert_one(stale)
    ledger.drive(dict(stale))
    later = datetime.now(UTC) + timedelta(seconds=5)
    clock.set_clock(lambda: later)
    try:
        assert ledger.seal(BUD) == 2  # f1 and a1
    finally:
        clock.set_clock(None)
    account = ledger.accounts.find_one({"_id": BUD})
    assert "a1" not in account["marks"] and account["sealed_before"] > stale["created_at"]
    # the stale worker's apply meets the seal; its posting is final, so it may not restamp
    with pytest.raises(Reload):
        ledger._apply(dict(stale), Entry(BUD, -100))
    assert ledger.balances([BUD]) == {BUD: 900}


def test_an_open_posting_that_meets_a_seal_is_restamped_and_applied(ledger):
    fund(ledger, "f1", 1_000)
    ledger.accounts.update_one({"_id": BUD}, {"$set": {"sealed_before": "2999-01-01"}})
    applied = spend(ledger, "a1", 100)
    assert applied["state"] == APPLIED and applied["restamps"] == 1
    assert applied["created_at"] >= "2999-01-01"
    assert ledger.balances([BUD, PAY]) == {BUD: 900, PAY: 100}


def test_post_many_applies_a_batch_and_falls_back_when_a_budget_runs_short(ledger):
    fund(ledger, "f1", 1_000)
    batch = [{"posting_id": f"b{i}", "entries": [Entry(BUD, -100), Entry(
        chart.payable(D, T, f"tut_{i}"), 100)], "kind": "accrual", "category": "subsidy",
              "district": D} for i in range(12)]
    done = ledger.post_many(batch)
    assert [d["state"] for d in done].count(APPLIED) == 10
    assert [d["state"] for d in done].count(REFUSED) == 2
    assert ledger.balances([BUD]) == {BUD: 0}
    totals = sums(ledger)
    assert sum(totals.values()) == 0 and totals[BUD] == 0
    again = ledger.post_many(batch[:10])
    assert all(d["state"] == APPLIED for d in again)
    assert ledger.balances([BUD]) == {BUD: 0}


def test_large_postings_apply_unguarded_entries_in_bulk(ledger):
    fund(ledger, "f1", 100_000)
    tutors = [chart.payable(D, T, f"t{i}") for i in range(50)]
    spend_all = [Entry(BUD, -50 * 100)] + [Entry(t, 100) for t in tutors]
    assert ledger.post("big", spend_all, kind="accrual", category="subsidy",
                       district=D)["state"] == APPLIED
    assert set(ledger.balances(tutors).values()) == {100}
    assert sum(sums(ledger).values()) == 0


def test_sealing_hundreds_of_marks_keeps_the_count_exact(ledger):
    """nx-27017 ignores a $unset of more than ~126 paths: seals drop marks in groups."""
    start = datetime.now(UTC) + timedelta(seconds=1)
    clock.set_clock(lambda: start)  # time stands still: post_many's own seal finds nothing old
    try:
        fund(ledger, "f1", 100_000)
        ledger.post_many([{"posting_id": f"b{i}", "entries": [
            Entry(BUD, -10), Entry(chart.payable(D, T, f"t{i}"), 10)], "kind": "accrual",
            "category": "subsidy", "district": D} for i in range(300)])
        assert ledger.accounts.find_one({"_id": BUD})["marks_count"] == 301
        clock.set_clock(lambda: start + timedelta(seconds=5))
        assert ledger.seal(BUD) == 301
    finally:
        clock.set_clock(None)
    account = ledger.accounts.find_one({"_id": BUD})
    assert account["marks"] == {} and account["marks_count"] == 0
    assert account["balance"] == 100_000 - 3_000
