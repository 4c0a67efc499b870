"""Term reports and their exports agree with the ledger to the fen."""

from __future__ import annotations

import csv
import io
import threading

from openpyxl import load_workbook

from services.funding import accounts as chart
from services.funding import exports
from services.funding.ledger import APPLIED, Entry

from .conftest import DISTRICT, TERM, card, fund, visit
from .test_payouts import exported, lines_of, statement


def busy_term(books):
    card(books)
    fund(books, 100_000)
    fund(books, 30_000, "service_fees")
    fund(books, 5_000, "collected_fees")
    for tutor, school, hours in (("t1", "s1", 2), ("t2", "s1", 1), ("t2", "s2", 3)):
        books.accruals.on_confirmed(visit(tutor=tutor, school=school, hours=hours))
    books.accruals.approve(DISTRICT, None, TERM, "fin-b")
    run = exported(books)
    line = lines_of(books, run)["t1"]
    books.reconciliation.import_statement(DISTRICT, "fin-a",
                                          statement((line["_id"], "200.00", "T1")))
    books.accruals.on_confirmed(visit(tutor="t3", school="s2", hours=1))  # awaiting approval
    books.accruals.on_confirmed(visit(tutor="t3", school="s2", hours=40))  # unfunded


def ledger_totals(books):
    balances = {}
    for acc in books.ledger.accounts.find({"district": DISTRICT, "term": TERM}):
        balances.setdefault(acc["kind"], 0)
        balances[acc["kind"]] += acc["balance"]
    return balances


def test_the_report_adds_up_to_the_books(books):
    busy_term(books)
    report = books.report(DISTRICT, TERM)
    books_ = ledger_totals(books)
    assert report["ledger"]["agrees"] is True
    assert report["totals"]["subsidy_fen"] == 70_000 == \
        books_["payable"] + books_["transit"] + books_["paid"]
    assert report["totals"]["paid_fen"] == 20_000 == books_["paid"]
    assert report["totals"]["budget_balance_fen"] == books_["budget"] == 135_000 - 70_000
    by_source = {r["source"]: r for r in report["by_source"]}
    assert by_source["fiscal_subsidy"]["subsidies_fen"] == -70_000
    assert by_source["collected_fees"]["balance_fen"] == 5_000
    tutors = {r["tutor_id"]: r for r in report["by_tutor"]}
    assert (tutors["t3"]["awaiting_fen"], tutors["t3"]["unfunded_visits"]) == (10_000, 1)
    assert {r["school_id"]: r["subsidy_fen"] for r in report["by_school"]} == {
        "s1": 30_000, "s2": 40_000}


def test_the_xlsx_export_opens_and_its_totals_equal_the_ledger(books):
    busy_term(books)
    data = exports.report_xlsx(books.report(DISTRICT, TERM))
    book = load_workbook(io.BytesIO(data), read_only=True)
    assert book.sheetnames == ["Summary", "By source", "By school", "By tutor"]
    balances = ledger_totals(books)

    def total_row(sheet):
        rows = list(book[sheet].iter_rows(values_only=True))
        header, total = rows[0], rows[-1]
        assert total[0] == "TOTAL"
        return dict(zip(header, total, strict=True))

    assert total_row("By source")["balance_fen"] == balances["budget"]
    assert total_row("By source")["funded_fen"] == -balances["source"]
    tutors = total_row("By tutor")
    assert tutors["subsidy_fen"] == balances["payable"] + balances["transit"] + balances["paid"]
    assert tutors["paid_fen"] == balances["paid"]
    assert tutors["in_transit_fen"] == balances["transit"]
    assert total_row("By school")["subsidy_fen"] == tutors["subsidy_fen"]


def test_csv_exports_have_a_total_row_and_escape_formulas(books):
    busy_term(books)
    report = books.report(DISTRICT, TERM)
    report["by_tutor"][0]["tutor_name"] = "=HYPERLINK(\"x\")"
    rows = list(csv.DictReader(io.StringIO(exports.report_csv(report, "tutor").lstrip("\ufeff"))))
    assert rows[-1]["tutor_id"] == "TOTAL" and rows[-1]["subsidy_fen"] == "70000"
    assert rows[0]["tutor_name"].startswith("'=")
    assert exports.yuan(-5) == "-0.05" and exports.yuan(123_456) == "1234.56"


def test_concurrent_spenders_never_overdraw_a_budget(books):
    """Eight threads race to spend one budget; the ledger stays exact and never negative."""
    ledger = books.ledger
    fund(books, 50_000)
    budget = chart.budget(DISTRICT, TERM, "fiscal_subsidy")
    outcomes: list[str] = []

    def spender(n):
        for i in range(12):
            doc = ledger.post(f"race:{n}:{i}", [Entry(budget, -700 - n * 10 - i),
                                                Entry(chart.payable(DISTRICT, TERM, f"t{n}"),
                                                      700 + n * 10 + i)],
                              kind="accrual", category="subsidy", district=DISTRICT)
            again = ledger.drive(ledger.posting(doc["_id"]))  # a second worker on the same
            assert again["state"] == doc["state"]
            outcomes.append(doc["state"])

    threads = [threading.Thread(target=spender, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    balance = ledger.balances([budget])[budget]
    spent = sum(-e["amount"] for e in ledger.entries.find({"account": budget, "amount": {
        "$lt": 0}}))
    assert balance >= 0 and balance == 50_000 - spent
    assert APPLIED in outcomes and "refused" in outcomes
    sums = ledger.sums_by_account({"district": DISTRICT})
    counters = {a["_id"]: a["balance"] for a in ledger.accounts.find({"district": DISTRICT})}
    assert {k: v for k, v in counters.items() if v} == {k: v for k, v in sums.items() if v}


def every_cell(data):
    book = load_workbook(io.BytesIO(data))
    return {title: [c for row in book[title].iter_rows() for c in row]
            for title in book.sheetnames}


def test_no_export_writes_a_formula_and_numbers_stay_numbers(books):
    busy_term(books)
    report = books.report(DISTRICT, TERM)
    report["district"] = "=HYPERLINK(\"http://x\",\"y\")"  # once written as a formula
    report["by_tutor"][0]["tutor_name"] = "\t=1+2"
    report["by_school"][0]["school_id"] = "＝1+2"
    cells = every_cell(exports.report_xlsx(report))
    assert all(c.data_type != "f" for sheet in cells.values() for c in sheet)
    summary = {row[0].value: row[1] for row in zip(*[iter(cells["Summary"])] * 2, strict=True)}
    assert summary["district"].data_type == "s"
    assert summary["district"].value == report["district"]
    assert summary["subsidy_fen"].value == 70_000 and summary["subsidy_fen"].data_type == "n"
    assert summary["ledger.agrees"].value is True
    found = exports.statement_xlsx({"statement_id": "=1", "district": "@x", "counts": {
        "matched": 1}}, {"matched": [{"kind": "matched", "payee": "-cmd", "line": 3}]})
    cells = every_cell(found)
    assert all(c.data_type != "f" for sheet in cells.values() for c in sheet)
    assert [c.value for c in cells["Findings"] if c.value is not None][-3:] == [
        "matched", 3, "-cmd"]


def test_csv_exports_guard_every_dangerous_prefix(books):
    busy_term(books)
    report = books.report(DISTRICT, TERM)
    names = ["\t=1+2", "  =1+2", "＝1+2", "＋1", "－1", "＠x"]
    for row, name in zip(report["by_tutor"], names, strict=False):
        row["tutor_name"] = name
    rows = list(csv.DictReader(io.StringIO(exports.report_csv(report, "tutor").lstrip("\ufeff"))))
    used = names[:len(report["by_tutor"])]
    assert [r["tutor_name"] for r in rows[:-1]] == ["'" + n for n in used]
    assert rows[-1]["subsidy_fen"] == "70000"
    found = exports.statement_csv({"matched": [{"kind": "matched", "payee": "\r=x",
                                                "statement_amount_fen": -5}]})
    (row,) = list(csv.DictReader(io.StringIO(found.lstrip("\ufeff"))))
    assert row["payee"] == "'\r=x" and row["statement_amount_fen"] == "-5"
