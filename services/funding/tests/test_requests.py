"""A retried creating request (the same Idempotency-Key) never creates a second record;
and only finance staff of a district reach funding at all."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from services.funding import accounts as chart
from services.funding.ledger import Entry
from services.funding.staff import finance_staff
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, ValidationFailed

from .conftest import DISTRICT, TERM, card, fund
from .test_payouts import approved, exported, lines_of, statement

BUDGET = chart.budget(DISTRICT, TERM, "fiscal_subsidy")


def rate_card(day=date(2026, 9, 1), senior=10_000):
    return {"effective_from": day, "rates": {"senior": senior}, "cap_per_visit_fen": None,
            "cap_per_school_term_fen": None, "note": None}


def test_only_finance_staff_of_a_district_act_on_funding():
    assert finance_staff(Actor("fin-a", "finance", DISTRICT)) == (DISTRICT, "fin-a")
    for actor in (Actor("root", "admin"), Actor("s", "school", "sch_1"),
                  Actor("v", "venue", "ven_1"), Actor("fin-x", "finance", None)):
        with pytest.raises(Forbidden):
            finance_staff(actor)


def test_a_retried_rate_card_answers_the_card_it_published(books):
    first = books.cards.create(DISTRICT, rate_card(), "fin-a", "key-1")
    again = books.cards.create(DISTRICT, rate_card(), "fin-a", "key-1")
    assert again["_id"] == first["_id"] and books.cards.cards.count_documents({}) == 1
    with pytest.raises(Conflict) as exists:  # another request for the same day
        books.cards.create(DISTRICT, rate_card(), "fin-a", "key-2")
    assert exists.value.code == "rate-card-exists"
    with pytest.raises(Conflict):
        books.cards.create(DISTRICT, rate_card(), "fin-a")
    with pytest.raises(ValidationFailed) as reused:  # the key, with another request
        books.cards.create(DISTRICT, rate_card(senior=9_000), "fin-a", "key-1")
    assert reused.value.code == "idempotency-key-reused"


def test_a_retried_payout_run_answers_the_run_it_made(books):
    card(books)
    fund(books, 1_000_000)
    approved(books, ("t1", 1), ("t2", 2))
    first = books.payouts.create(DISTRICT, TERM, "fin-a", "December", "run-key")
    again = books.payouts.create(DISTRICT, TERM, "fin-a", "December", "run-key")
    assert again["_id"] == first["_id"] and again["total_fen"] == 30_000
    assert books.payouts.runs.count_documents({}) == 1
    assert books.payouts.lines.count_documents({}) == 2
    with pytest.raises(Conflict) as empty:  # a new request: nothing is left to pay
        books.payouts.create(DISTRICT, TERM, "fin-a", "December", "other-key")
    assert empty.value.code == "nothing-to-pay"


def test_a_payout_run_whose_first_attempt_died_before_writing_is_built_by_the_retry(books):
    card(books)
    fund(books, 1_000_000)
    approved(books, ("t1", 1))
    run_id = books.requests.bind("payout_run", DISTRICT, "fin-a", "k", "run_dead0000000001",
                                 {"term": TERM, "note": None})
    run = books.payouts.create(DISTRICT, TERM, "fin-a", None, "k")
    assert run["_id"] == run_id and run["state"] == "draft" and run["total_fen"] == 10_000


def test_a_retried_funding_or_transfer_moves_the_money_once(books):
    body = {"term": TERM, "source": "fiscal_subsidy", "amount_fen": 5_000, "memo": "m"}
    first = books.budgets.fund(DISTRICT, "fin-a", body, "fund-key")
    again = books.budgets.fund(DISTRICT, "fin-a", body, "fund-key")
    assert first["_id"] == again["_id"]
    move = {"from_term": TERM, "from_source": "fiscal_subsidy", "to_term": TERM,
            "to_source": "service_fees", "amount_fen": 1_000, "memo": "m"}
    t1 = books.budgets.transfer(DISTRICT, "fin-a", move, "move-key")
    t2 = books.budgets.transfer(DISTRICT, "fin-a", move, "move-key")
    assert t1["_id"] == t2["_id"]
    assert books.ledger.balances([BUDGET]) == {BUDGET: 4_000}
    # another user's same key is another request
    books.budgets.fund(DISTRICT, "fin-b", body, "fund-key")
    assert books.ledger.balances([BUDGET]) == {BUDGET: 9_000}


def test_request_keys_expire_by_a_ttl_index(books):
    books.budgets.fund(DISTRICT, "fin-a", {"term": TERM, "source": "fiscal_subsidy",
                                           "amount_fen": 5_000, "memo": "m"}, "fund-key")
    stored = books.db.request_keys.find_one({})
    assert stored["_id"].startswith("funding.funding|")
    assert isinstance(stored["expires_at"], datetime)
    ttl = [i for i in books.db.request_keys.list_indexes() if i["key"] == {"expires_at": 1}]
    assert ttl and ttl[0]["expireAfterSeconds"] == 0


def test_a_retried_reversal_answers_the_first_outcome_even_a_refusal(books):
    funding = fund(books, 1_000)
    books.ledger.post("spend", [Entry(BUDGET, -900),
                                Entry(chart.payable(DISTRICT, TERM, "t1"), 900)],
                      kind="accrual", category="subsidy", district=DISTRICT)
    for _ in range(2):
        with pytest.raises(Conflict) as refused:
            books.budgets.reverse(DISTRICT, "fin-a", funding["_id"], "mistake", "rev-key")
        assert refused.value.code == "insufficient-funds"
    assert books.ledger.postings.count_documents({"reverses": funding["_id"]}) == 1
    with pytest.raises(Conflict):  # a new request is a new attempt
        books.budgets.reverse(DISTRICT, "fin-a", funding["_id"], "mistake", "rev-key-2")
    assert books.ledger.postings.count_documents({"reverses": funding["_id"]}) == 2


def test_a_statement_key_reused_for_another_file_is_refused(books):
    card(books)
    fund(books, 1_000_000)
    approved(books, ("t1", 1))
    ref = lines_of(books, exported(books))["t1"]["_id"]
    text = statement((ref, "100.00", "T1"))
    first = books.reconciliation.import_statement(DISTRICT, "fin-a", text, "stm-key")
    assert books.reconciliation.import_statement(DISTRICT, "fin-a", text,
                                                 "stm-key")["_id"] == first["_id"]
    with pytest.raises(ValidationFailed) as reused:
        books.reconciliation.import_statement(DISTRICT, "fin-a",
                                              statement((ref, "99.00", "T1")), "stm-key")
    assert reused.value.code == "idempotency-key-reused"
