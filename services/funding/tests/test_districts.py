"""Districts are organisations (#12.1): funding's books move from district names to ids
(`kepu migrate districts`), once, keeping every balance, and late events follow."""

from __future__ import annotations

from datetime import date

from services.funding import accounts as chart
from services.funding.districts import FundingDistricts

from .conftest import DISTRICT, TERM, card, fund, visit

NEW = "dis_test"


def balances(books, district):
    rows = books.budgets.summary(district, TERM)
    return {r["source"]: (r["balance_fen"], r["funded_fen"], r["subsidies_fen"]) for r in rows}


def test_adopting_ids_moves_the_books_once_and_keeps_every_balance(books):
    card(books, {"senior": 10_000}, day=date(2026, 9, 1), per_school_term=500_000)
    fund(books, 100_000)
    accrued = books.accruals.on_confirmed(visit(hours=2))
    before = balances(books, DISTRICT)
    payable = books.ledger.balances([chart.payable(DISTRICT, TERM, "tut_1")])
    assert books.districts.names() == {DISTRICT}

    done = books.districts.adopt({DISTRICT: NEW})
    assert done["accounts"] >= 3 and done["rate_cards"] == 1 and done["school_caps"] == 1
    assert books.districts.names() == set()
    assert balances(books, NEW) == before
    assert books.ledger.balances([chart.payable(NEW, TERM, "tut_1")]) == {
        chart.payable(NEW, TERM, "tut_1"): payable[chart.payable(DISTRICT, TERM, "tut_1")]}
    moved = books.accruals.get(NEW, accrued["_id"])
    assert moved["amount_fen"] == 20_000 and moved["rate_card_id"].startswith(f"{NEW}|")
    assert books.db.ledger_accounts.count_documents({"district": DISTRICT}) == 0
    assert books.db.entries.count_documents({"district": DISTRICT}) == 0
    assert all(e["account"].split("|")[1] == NEW for p in books.db.postings.find()
               for e in p["entries"])

    again = books.districts.adopt({DISTRICT: NEW})  # a second run changes nothing
    assert set(again.values()) == {0}
    assert balances(books, NEW) == before


def test_a_late_event_naming_the_district_lands_on_its_id(books):
    books.districts.adopt({DISTRICT: NEW})
    card_data = {"effective_from": date(2026, 9, 1), "rates": {"senior": 10_000},
                 "cap_per_visit_fen": None, "cap_per_school_term_fen": None, "note": None}
    books.cards.create(NEW, card_data, "fin-a")
    books.budgets.fund(NEW, "fin-a", {"term": TERM, "source": "fiscal_subsidy",
                                      "amount_fen": 50_000, "memo": "t"}, None)
    late = FundingDistricts(books.db).resolve(visit(hours=1))  # no district_id, the old name
    assert late["district"] == NEW
    assert books.accruals.on_confirmed(late)["amount_fen"] == 10_000
    carried = FundingDistricts(books.db).resolve(visit(district="x", district_id="dis_other"))
    assert carried["district"] == "dis_other"  # an event with the id keys on it
    unknown = FundingDistricts(books.db).resolve(visit(district="静安区"))
    assert unknown["district"] == "静安区"  # not migrated yet: the name, as before


def test_ids_are_never_taken_for_names(books):
    fund(books, 1_000)
    books.budgets.fund(NEW, "fin-a", {"term": TERM, "source": "fiscal_subsidy",
                                      "amount_fen": 1_000, "memo": "t"}, None)
    assert books.districts.names() == {DISTRICT}
    assert books.districts.adopt({NEW: "dis_else"}) == {}
