"""`funding.subsidy_paid`: staged in the accrual's outbox by the write that marks it paid."""

from __future__ import annotations

from services.kit import outbox

from .conftest import DISTRICT, TERM
from .test_payouts import approved, exported, funded, lines_of, statement  # noqa: F401


def _events(books, visit_id):
    doc = books.accruals.accruals.find_one({"_id": visit_id})
    return doc, [env for _, env in outbox.pending(doc)]


def test_a_visit_paid_on_a_statement_stages_its_subsidy_paid_event(funded):  # noqa: F811
    t1a, t1b, t2 = approved(funded, ("t1", 1), ("t1", 2), ("t2", 1))
    run = exported(funded)
    lines = lines_of(funded, run)
    for acc in (t1a, t1b, t2):  # exported is not paid: nothing announced yet
        assert _events(funded, acc["_id"])[1] == []
    report = funded.reconciliation.import_statement(
        DISTRICT, "fin-a", statement((lines["t1"]["_id"], "300.00", "T1")))
    for acc, amount in ((t1a, 10_000), (t1b, 20_000)):
        doc, events = _events(funded, acc["_id"])
        assert doc["status"] == "paid" and doc["outbox_pending"] == 1
        assert [e["type"] for e in events] == ["funding.subsidy_paid"]
        assert events[0]["data"] == {
            "visit_id": acc["_id"], "school_id": "sch_1", "district_id": DISTRICT,
            "term": TERM, "amount_fen": amount, "paid_at": doc["paid_at"], "tutor_id": "t1",
            "statement_id": report["_id"], "reference": lines["t1"]["_id"]}
    doc, events = _events(funded, t2["_id"])
    assert doc["status"] == "in_transit" and events == []


def test_a_resumed_import_stages_no_second_event(funded):  # noqa: F811
    (acc,) = approved(funded, ("t1", 1))
    lines = lines_of(funded, exported(funded))
    report = funded.reconciliation.import_statement(
        DISTRICT, "fin-a", statement((lines["t1"]["_id"], "100.00", "T1")))
    paid_line = funded.payouts.lines.find_one({"_id": lines["t1"]["_id"]})
    # what a worker resuming the import after a crash does again
    funded.reconciliation._mark_visits_paid(report["_id"], [paid_line], "2026-12-02T00:00:00Z")
    doc, events = _events(funded, acc["_id"])
    assert len(events) == 1 and doc["outbox_pending"] == 1
    assert doc["paid_at"] == events[0]["data"]["paid_at"] != "2026-12-02T00:00:00Z"


def test_accruals_are_an_outbox_collection(books):
    assert "accruals" in books.outbox_collections
    keys = [i["key"] for i in books.accruals.accruals.index_information().values()]
    assert [("outbox_pending", 1)] in keys  # how the relay finds them
