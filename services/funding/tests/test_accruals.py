"""Accruals: rate cards, budgets drawn in order, unfunded and capped visits, reversals."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from services.funding import accounts as chart
from services.funding.rate_cards import subsidy
from services.kit.errors import Conflict

from .conftest import DISTRICT, TERM, card, fund, visit

FISCAL = chart.budget(DISTRICT, TERM, "fiscal_subsidy")
FEES = chart.budget(DISTRICT, TERM, "service_fees")
COLLECTED = chart.budget(DISTRICT, TERM, "collected_fees")


def payable(tutor="tut_1"):
    return chart.payable(DISTRICT, TERM, tutor)


def test_subsidy_is_rate_times_hours_rounded_half_up_then_capped():
    c = {"rates": {"junior": 3_333}, "cap_per_visit_fen": None}
    assert subsidy(c, "junior", 1.5) == (5_000, None)  # 4999.5 rounds up
    assert subsidy(c, "junior", 0.5) == (1_667, None)
    assert subsidy({**c, "cap_per_visit_fen": 4_000}, "junior", 2) == (4_000, "visit")


def test_a_confirmed_visit_accrues_from_the_card_in_force_on_its_day(books):
    card(books, {"senior": 10_000}, day=date(2026, 9, 1))
    card(books, {"senior": 12_000}, day=date(2026, 11, 1))
    fund(books, 100_000)
    early = books.accruals.on_confirmed(visit(day=date(2026, 10, 31), hours=2))
    late = books.accruals.on_confirmed(visit(day=date(2026, 11, 1), hours=2))
    assert (early["status"], early["amount_fen"]) == ("awaiting_approval", 20_000)
    assert (late["status"], late["amount_fen"]) == ("awaiting_approval", 24_000)
    assert early["rate_card_id"].endswith("2026-09-01")
    assert books.ledger.balances([FISCAL, payable()]) == {FISCAL: 56_000, payable(): 44_000}


def test_replaying_a_confirmation_posts_once(books):
    card(books)
    fund(books, 100_000)
    v = visit(hours=1)
    first = books.accruals.on_confirmed(v)
    again = books.accruals.on_confirmed(dict(v))
    assert first["posting_id"] == again["posting_id"]
    assert books.ledger.postings.count_documents({"refs.visit_id": v["visit_id"]}) == 1
    assert books.ledger.balances([payable()])[payable()] == 10_000


def test_fiscal_subsidy_first_then_service_fees_never_collected_fees(books):
    card(books)
    fund(books, 15_000)
    fund(books, 50_000, "service_fees")
    fund(books, 1_000_000, "collected_fees")
    a = books.accruals.on_confirmed(visit(hours=2))  # 20,000
    assert a["sources"] == {"fiscal_subsidy": 15_000, "service_fees": 5_000}
    b = books.accruals.on_confirmed(visit(hours=5))  # 50,000 > 45,000 left
    assert b["status"] == "unfunded" and b["reason"]["code"] == "insufficient_budget"
    assert books.ledger.balances([COLLECTED])[COLLECTED] == 1_000_000


def test_an_unfunded_visit_stays_visible_and_accrues_once_funded(books):
    card(books)
    v = visit(hours=1)
    short = books.accruals.on_confirmed(v)
    assert short["status"] == "unfunded"
    listed = books.accruals.list(DISTRICT, {"status": "unfunded", "limit": 10})[0]
    assert [d["_id"] for d in listed] == [v["visit_id"]]
    fund(books, 10_000)
    result = books.accruals.retry(DISTRICT, None, TERM)
    assert result["done"] == [v["visit_id"]]
    assert books.accruals.get(DISTRICT, v["visit_id"])["status"] == "awaiting_approval"
    assert books.ledger.balances([FISCAL])[FISCAL] == 0


def test_no_card_or_no_rate_for_the_level_is_unfunded_with_the_reason(books):
    fund(books, 100_000)
    none = books.accruals.on_confirmed(visit())
    assert none["reason"]["code"] == "no_rate_card"
    card(books, {"junior": 5_000})
    books.accruals.retry(DISTRICT, [none["_id"]], None)
    assert books.accruals.get(DISTRICT, none["_id"])["reason"]["code"] == "no_rate_for_level"


def test_school_term_cap_trims_then_stops_accruals(books):
    card(books, {"senior": 10_000}, per_school_term=25_000)
    fund(books, 100_000)
    first = books.accruals.on_confirmed(visit(hours=2))
    second = books.accruals.on_confirmed(visit(hours=2))
    third = books.accruals.on_confirmed(visit(hours=2))
    other_school = books.accruals.on_confirmed(visit(hours=2, school="sch_2"))
    assert first["amount_fen"] == 20_000
    assert (second["amount_fen"], second["capped_by"]) == (5_000, "school_term")
    assert third["status"] == "capped"
    assert other_school["amount_fen"] == 20_000
    # a cancelled visit gives its share of the cap back
    books.accruals.on_cancelled(visit(visit_id=first["_id"]), "confirmed")
    books.accruals.retry(DISTRICT, [third["_id"]], None)
    assert books.accruals.get(DISTRICT, third["_id"])["amount_fen"] == 20_000


def test_cancelling_before_payout_reverses_to_the_same_budgets(books):
    card(books)
    fund(books, 15_000)
    fund(books, 15_000, "service_fees")
    v = visit(hours=2)
    books.accruals.on_confirmed(v)
    done = books.accruals.on_cancelled(v, "confirmed")
    assert done["status"] == "reversed"
    assert books.ledger.balances([FISCAL, FEES, payable()]) == {
        FISCAL: 15_000, FEES: 15_000, payable(): 0}
    again = books.accruals.on_cancelled(v, "confirmed")
    assert again["reversal_posting_id"] == done["reversal_posting_id"]


def test_a_cancellation_that_overtakes_its_confirmation_wins(books):
    card(books)
    fund(books, 100_000)
    v = visit()
    assert books.accruals.on_cancelled(v, "confirmed")["status"] == "cancelled"
    assert books.accruals.on_confirmed(v)["status"] == "cancelled"
    assert books.ledger.balances([FISCAL])[FISCAL] == 100_000


def test_cancelling_a_visit_never_confirmed_changes_nothing(books):
    assert books.accruals.on_cancelled(visit(), "booked") is None


def test_approval_of_listed_visits_says_what_it_skipped(books):
    card(books)
    fund(books, 10_000)
    ok = books.accruals.on_confirmed(visit(hours=1))
    short = books.accruals.on_confirmed(visit(hours=1))
    answer = books.accruals.approve(DISTRICT, [ok["_id"], short["_id"], "vis_nope"], None,
                                    "fin-b")
    assert answer["done"] == [ok["_id"]]
    assert {s["visit_id"]: s["status"] for s in answer["skipped"]} == {
        short["_id"]: "unfunded", "vis_nope": "not_found"}


def test_recover_needs_an_open_clawback(books):
    card(books)
    fund(books, 10_000)
    a = books.accruals.on_confirmed(visit(hours=1))
    with pytest.raises(Conflict):
        books.accruals.recover(DISTRICT, a["_id"], "fin-a", "repaid")


def test_workers_racing_on_one_visit_post_it_once(books):
    card(books)
    fund(books, 100_000)
    v = visit(hours=1)
    results = []

    def worker():
        results.append(books.accruals.on_confirmed(dict(v))["status"])

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["awaiting_approval"] * 6
    assert books.ledger.postings.count_documents({"refs.visit_id": v["visit_id"],
                                                  "state": "applied"}) == 1
    assert books.ledger.balances([payable(), FISCAL]) == {payable(): 10_000, FISCAL: 90_000}


def test_a_batch_accrues_like_one_by_one_and_skips_repeats(books):
    card(books, {"senior": 10_000, "junior": 5_000})
    fund(books, 45_000)
    seen = books.accruals.on_confirmed(visit(hours=1))
    batch = [visit(tutor=f"b{i}", hours=1) for i in range(3)]
    batch += [visit(level="expert"), visit(hours=2), dict(seen, visit_id=seen["_id"])]
    counts = books.accruals.accrue_many(batch)
    # 3 x 10,000 in the batch path; expert has no rate; 20,000 more is beyond the budget
    assert counts == {"awaiting_approval": 4, "unfunded": 2}
    assert books.ledger.balances([FISCAL])[FISCAL] == 5_000
    assert books.ledger.postings.count_documents({"refs.visit_id": seen["_id"]}) == 1
    assert books.accruals.accrue_many(batch) == counts  # a replayed batch changes nothing
    assert books.ledger.balances([FISCAL])[FISCAL] == 5_000
