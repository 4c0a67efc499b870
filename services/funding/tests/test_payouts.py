"""Payout runs, maker-checker, export, clawbacks netted, and bank reconciliation."""

from __future__ import annotations

import csv
import hashlib
import io

import pytest

from services.funding import accounts as chart
from services.funding.statements import parse_statement
from services.kit.errors import Conflict, Forbidden, ValidationFailed

from .conftest import DISTRICT, TERM, card, fund, visit

TRANSIT = chart.transit(DISTRICT, TERM)
PAID = chart.paid(DISTRICT, TERM)


@pytest.fixture()
def funded(books):
    card(books)
    fund(books, 1_000_000)
    return books


def approved(books, *tutors_hours):
    out = []
    for tutor, hours in tutors_hours:
        a = books.accruals.on_confirmed(visit(tutor=tutor, hours=hours))
        out.append(a)
    books.accruals.approve(DISTRICT, None, TERM, "fin-b")
    return out


def exported(books, maker="fin-a", checker="fin-b"):
    run = books.payouts.create(DISTRICT, TERM, maker, None)
    books.payouts.approve(DISTRICT, run["_id"], checker)
    return books.payouts.export(DISTRICT, run["_id"], checker)


def lines_of(books, run):
    return {line["tutor_id"]: line for line in books.payouts.lines.find({"run_id": run["_id"]})}


def statement(*rows):
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "reference", "amount", "payee"])
    for row in rows:
        writer.writerow(["2026-12-01", *row])
    return out.getvalue()


def test_the_creator_of_a_run_cannot_approve_it(funded):
    approved(funded, ("t1", 1))
    run = funded.payouts.create(DISTRICT, TERM, "fin-a", "December")
    with pytest.raises(Forbidden) as refused:
        funded.payouts.approve(DISTRICT, run["_id"], "fin-a")
    assert refused.value.code == "maker-checker"
    assert funded.payouts.approve(DISTRICT, run["_id"], "fin-b")["approved_by"] == "fin-b"


def test_a_run_gathers_approved_subsidies_one_line_per_tutor(funded):
    approved(funded, ("t1", 1), ("t1", 2), ("t2", 1))
    funded.accruals.on_confirmed(visit(tutor="t3", hours=1))  # awaiting approval: left out
    run = funded.payouts.create(DISTRICT, TERM, "fin-a", None)
    lines = lines_of(funded, run)
    assert {t: (line["amount_fen"], line["visits"]) for t, line in lines.items()} == {
        "t1": (30_000, 2), "t2": (10_000, 1)}
    assert run["total_fen"] == 40_000 and run["lines"] == 2
    with pytest.raises(Conflict) as empty:
        funded.payouts.create(DISTRICT, TERM, "fin-a", None)  # nothing left to pay
    assert empty.value.code == "nothing-to-pay"


def test_export_posts_the_run_and_freezes_it(funded):
    approved(funded, ("t1", 1), ("t2", 2))
    run = exported(funded)
    assert run["state"] == "exported"
    assert funded.ledger.balances([TRANSIT, chart.payable(DISTRICT, TERM, "t1")]) == {
        TRANSIT: 30_000, chart.payable(DISTRICT, TERM, "t1"): 0}
    name, text = funded.payouts.payout_file(DISTRICT, run["_id"])
    assert hashlib.sha256(text.encode()).hexdigest() == run["file_sha256"]
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [(r["payee_id"], r["amount_fen"], r["amount_yuan"]) for r in rows] == [
        ("t1", "10000", "100.00"), ("t2", "20000", "200.00")]
    assert funded.payouts.export(DISTRICT, run["_id"], "fin-c")["file_sha256"] == \
        run["file_sha256"]
    for act in (funded.payouts.approve, funded.payouts.discard):
        with pytest.raises(Conflict):
            act(DISTRICT, run["_id"], "fin-c")
    statuses = {a["status"] for a in funded.db.accruals.find({"run_id": run["_id"]})}
    assert statuses == {"in_transit"}


def test_a_discarded_run_releases_its_subsidies(funded):
    approved(funded, ("t1", 1))
    run = funded.payouts.create(DISTRICT, TERM, "fin-a", None)
    funded.payouts.discard(DISTRICT, run["_id"], "fin-b")
    again = funded.payouts.create(DISTRICT, TERM, "fin-a", None)
    assert again["total_fen"] == 10_000


def test_a_cancelled_visit_makes_its_unexported_run_stale(funded):
    a, _ = approved(funded, ("t1", 1), ("t2", 1))
    run = funded.payouts.create(DISTRICT, TERM, "fin-a", None)
    funded.accruals.on_cancelled(visit(visit_id=a["_id"]), "confirmed")
    with pytest.raises(Conflict) as stale:
        funded.payouts.approve(DISTRICT, run["_id"], "fin-b")
    assert stale.value.code == "payout-run-stale"
    funded.payouts.discard(DISTRICT, run["_id"], "fin-b")
    fresh = funded.payouts.create(DISTRICT, TERM, "fin-a", None)
    assert set(lines_of(funded, fresh)) == {"t2"}


def test_a_visit_cancelled_after_payment_is_clawed_back_from_the_next_line(funded):
    (a,) = approved(funded, ("t1", 2))
    run = exported(funded)
    ref = lines_of(funded, run)["t1"]["_id"]
    funded.reconciliation.import_statement(DISTRICT, "fin-a", statement((ref, "200.00", "T1")))
    assert funded.accruals.get(DISTRICT, a["_id"])["status"] == "paid"
    clawed = funded.accruals.on_cancelled(visit(visit_id=a["_id"]), "confirmed")
    assert clawed["status"] == "clawback_due"
    payable = chart.payable(DISTRICT, TERM, "t1")
    assert funded.ledger.balances([payable])[payable] == -20_000  # the tutor owes it back
    approved(funded, ("t1", 3))  # 30,000 owed for a new visit
    later = funded.payouts.create(DISTRICT, TERM, "fin-a", None)
    line = lines_of(funded, later)["t1"]
    assert (line["amount_fen"], line["clawback_fen"]) == (10_000, 20_000)
    funded.payouts.approve(DISTRICT, later["_id"], "fin-b")
    funded.payouts.export(DISTRICT, later["_id"], "fin-b")
    assert funded.ledger.balances([payable])[payable] == 0
    assert funded.accruals.get(DISTRICT, a["_id"])["status"] == "recovered"


def test_statement_with_a_match_a_wrong_amount_and_an_unknown_reference(funded):
    approved(funded, ("t1", 1), ("t2", 2))
    run = exported(funded)
    lines = lines_of(funded, run)
    text = statement((lines["t1"]["_id"], "100.00", "T1"), (lines["t2"]["_id"], "199.99", "T2"),
                     ("KPNOSUCHREF-00001", "50.00", "Someone"))
    report = funded.reconciliation.import_statement(DISTRICT, "fin-a", text)
    findings, _ = funded.reconciliation.all_findings(report["_id"])
    assert {k: [(f["line"], f["reference"]) for f in v] for k, v in findings.items()} == {
        "matched": [(1, lines["t1"]["_id"])],
        "amount_mismatch": [(2, lines["t2"]["_id"])],
        "unknown_reference": [(3, "KPNOSUCHREF-00001")]}
    assert report["matched_fen"] == 10_000
    statuses = {t: line["status"] for t, line in lines_of(funded, run).items()}
    assert statuses == {"t1": "paid", "t2": "sent"}
    assert funded.ledger.balances([TRANSIT, PAID]) == {TRANSIT: 20_000, PAID: 10_000}
    # the same file again is the same statement: nothing posted twice
    again = funded.reconciliation.import_statement(DISTRICT, "fin-a", text)
    assert again["_id"] == report["_id"]
    assert funded.ledger.balances([TRANSIT, PAID]) == {TRANSIT: 20_000, PAID: 10_000}


def test_a_second_statement_reports_paid_duplicates_and_payouts_not_on_it(funded):
    approved(funded, ("t1", 1), ("t2", 1), ("t3", 1))
    lines = lines_of(funded, exported(funded))
    r1, r2 = lines["t1"]["_id"], lines["t2"]["_id"]
    funded.reconciliation.import_statement(DISTRICT, "fin-a", statement((r1, "100", "T1")))
    second = funded.reconciliation.import_statement(
        DISTRICT, "fin-a", statement((r1, "100", "T1"), (r2, "100", "T2"), (r2, "100", "T2")))
    assert second["counts"] == {"already_paid": 1, "matched": 1, "duplicate_line": 1,
                                "not_on_statement": 1}
    findings, _ = funded.reconciliation.all_findings(second["_id"])
    assert findings["not_on_statement"][0]["reference"] == lines["t3"]["_id"]


def test_statement_parsing_names_bad_lines_and_columns():
    with pytest.raises(ValidationFailed) as no_ref:
        parse_statement("date,amount\n2026-12-01,1.00\n")
    assert "header" in no_ref.value.errors
    with pytest.raises(ValidationFailed) as bad:
        parse_statement("reference,amount\nKP1,1.234\n,5\nKP3,abc\n")
    assert set(bad.value.errors) == {"line 1.amount", "line 2.reference", "line 3.amount"}
    with pytest.raises(ValidationFailed):
        parse_statement("reference,amount\n")
    lines = parse_statement("\ufeff参考号,金额\nKP1,\"1,234.5\"\nKP2,-3\n")
    assert [(x["reference"], x["amount_fen"]) for x in lines] == [("KP1", 123_450),
                                                                  ("KP2", 300)]
    assert parse_statement("reference,amount_fen\nKP1,1999\n")[0]["amount_fen"] == 1_999


def test_an_import_in_progress_is_refused_and_a_dead_one_is_resumed(funded):
    approved(funded, ("t1", 1))
    ref = lines_of(funded, exported(funded))["t1"]["_id"]
    text = statement((ref, "100.00", "T1"))
    digest = hashlib.sha256(f"{DISTRICT}\n{text}".encode()).hexdigest()[:24]
    funded.reconciliation.statements.insert_one({  # another importer, mid-way
        "_id": f"stm_{digest}", "district": DISTRICT, "state": "importing", "lines": 1,
        "total_fen": 10_000, "counts": {}, "matched_fen": 0, "imported_by": "fin-x",
        "created_at": "2026-12-01T00:00:00.000000Z", "lease_until": "2999-01-01T00:00:00.000000Z",
        "key": "@x"})
    with pytest.raises(Conflict) as busy:
        funded.reconciliation.import_statement(DISTRICT, "fin-a", text)
    assert busy.value.code == "statement-in-progress"
    funded.reconciliation.statements.update_one(
        {"_id": f"stm_{digest}"}, {"$set": {"lease_until": "2000-01-01T00:00:00.000000Z"}})
    done = funded.reconciliation.import_statement(DISTRICT, "fin-a", text)
    assert done["state"] == "reconciled" and done["counts"] == {"matched": 1}
    assert funded.ledger.balances([PAID])[PAID] == 10_000


HUGE = "9" * 5_000


@pytest.mark.parametrize("header,cell", [
    ("amount", HUGE), ("amount", HUGE + ".00"), ("amount", "1" + "0" * 20), ("amount_fen", HUGE),
    ("amount_fen", "1" + "0" * 13), ("amount", "NaN"), ("amount", "nan"), ("amount", "inf"),
    ("amount", "-Infinity"), ("amount", "1e5"), ("amount", "1E+3"), ("amount", "0x10"),
    ("amount_fen", "1e3"), ("amount_fen", "NaN"), ("amount_fen", "12.5"),
    ("amount", "1" * 3_000 + "e-2990")])
def test_statement_amounts_out_of_range_or_not_numbers_are_named_422s(header, cell):
    """Thousands of digits once raised ValueError/OverflowError (a 500)."""
    with pytest.raises(ValidationFailed) as bad:
        parse_statement(f"reference,{header}\nKP1,{cell}\n")
    assert set(bad.value.errors) == {"line 1.amount"}
    (message,) = bad.value.errors["line 1.amount"]
    assert message.startswith(f"column 2 ('{header}')")
    assert len(message) < 200 and len(bad.value.detail) < 200  # never the cell in full


def test_statement_amounts_at_the_edges_parse_exactly():
    text = ("reference,amount\nKP1,10000000000.00\nKP2,\"0" + "0" * 5_000 + "1.5\"\n"
            "KP3,￥１２３.４５\nKP4,-0.01\n")
    assert [x["amount_fen"] for x in parse_statement(text)] == [10**12, 150, 12_345, 1]
    with pytest.raises(ValidationFailed):
        parse_statement("reference,amount\nKP1,10000000000.01\n")


def test_statement_errors_name_row_and_column_and_cap_what_they_echo():
    long_ref = "R" * 10_000
    with pytest.raises(ValidationFailed) as bad:
        parse_statement(f"date,payee,reference,amount\n2026-12-01,x,{long_ref},1.00\n"
                        f"2026-12-01,x,,{'x' * 10_000}\n")
    errors = bad.value.errors
    assert set(errors) == {"line 1.reference", "line 2.reference", "line 2.amount"}
    assert errors["line 1.reference"][0].startswith("column 3 ('reference')")
    assert errors["line 2.amount"][0].startswith("column 4 ('amount')")
    assert all(len(m) < 200 for ms in errors.values() for m in ms)
    assert "(10000 characters)" in errors["line 2.amount"][0]


def test_an_unreadable_statement_row_is_a_422_naming_its_line():
    with pytest.raises(ValidationFailed) as bad:  # over the csv module's field limit
        parse_statement("reference,amount\nKP1,1.00\nKP2,\"" + "x" * 200_000 + "\"\n")
    assert set(bad.value.errors) == {"line 2"}
    assert len(bad.value.detail) < 200


def test_kept_statement_text_is_capped():
    (line,) = parse_statement("reference,amount,memo\nKP1,1.00," + "m" * 5_000 + "\n")
    assert len(line["memo"]) == 200


def test_a_huge_amount_never_reaches_the_database(funded):
    with pytest.raises(ValidationFailed):
        funded.reconciliation.import_statement(DISTRICT, "fin-a",
                                               f"reference,amount_fen\nKP1,{HUGE}\n")
    assert funded.reconciliation.statements.count_documents({}) == 0
