"""Term reports: where a district's money for a term came from and went, to the fen.

Three views of one term: by source (each budget's funding, transfers, subsidies and
balance, read from the ledger's entries), by school and by tutor (read from the accruals).
`ledger` carries the term's account balances by kind, so a reader (and the tests) can
check that the views add up to the books: subsidies standing = payable + transit + paid,
and the budgets' balances = what the by-source view says.
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from services.funding import accounts as chart
from services.funding.accruals import APPROVED, AWAITING, CLAWBACK, IN_TRANSIT, PAID, STANDING
from services.funding.ledger import Ledger
from services.kit import clock

SOURCE_COLUMNS = ("source", "funded_fen", "transferred_fen", "subsidies_fen", "balance_fen")
SCHOOL_COLUMNS = ("school_id", "visits", "hours", "students", "subsidy_fen", "paid_fen")
TUTOR_COLUMNS = ("tutor_id", "tutor_name", "visits", "hours", "subsidy_fen", "awaiting_fen",
                 "in_transit_fen", "paid_fen", "clawback_due_fen", "unfunded_visits")


def term_report(db: Database, ledger: Ledger, district: str, term: str) -> dict[str, Any]:
    by_source = _by_source(ledger, district, term)
    schools: dict[str, dict[str, Any]] = {}
    tutors: dict[str, dict[str, Any]] = {}
    for acc in db.accruals.find({"district": district, "term": term},
                                {"school_id": 1, "tutor_id": 1, "tutor_name": 1, "hours": 1,
                                 "students": 1, "amount_fen": 1, "status": 1}):
        status, amount = acc["status"], int(acc.get("amount_fen") or 0)
        school = schools.setdefault(acc["school_id"], dict.fromkeys(SCHOOL_COLUMNS, 0))
        tutor = tutors.setdefault(acc["tutor_id"], dict.fromkeys(TUTOR_COLUMNS, 0))
        school["school_id"] = acc["school_id"]
        tutor["tutor_id"], tutor["tutor_name"] = acc["tutor_id"], acc["tutor_name"]
        if status in STANDING:
            for row in (school, tutor):
                row["visits"] += 1
                row["hours"] += float(acc["hours"])
                row["subsidy_fen"] += amount
            school["students"] += int(acc["students"])
        if status == PAID:
            school["paid_fen"] += amount
            tutor["paid_fen"] += amount
        elif status in (AWAITING, APPROVED):
            tutor["awaiting_fen"] += amount
        elif status == IN_TRANSIT:
            tutor["in_transit_fen"] += amount
        elif status == CLAWBACK:
            tutor["clawback_due_fen"] += amount
        elif status == "unfunded":
            tutor["unfunded_visits"] += 1
    by_school = [schools[k] for k in sorted(schools)]
    by_tutor = [tutors[k] for k in sorted(tutors)]
    for row in by_school + by_tutor:
        row["hours"] = round(row["hours"], 2)
    balances = ledger_balances(db, district, term)
    totals = {
        "funded_fen": sum(r["funded_fen"] for r in by_source),
        "transferred_fen": sum(r["transferred_fen"] for r in by_source),
        "budget_balance_fen": sum(r["balance_fen"] for r in by_source),
        "subsidy_fen": sum(r["subsidy_fen"] for r in by_tutor),
        "awaiting_fen": sum(r["awaiting_fen"] for r in by_tutor),
        "in_transit_fen": sum(r["in_transit_fen"] for r in by_tutor),
        "paid_fen": sum(r["paid_fen"] for r in by_tutor),
        "clawback_due_fen": sum(r["clawback_due_fen"] for r in by_tutor),
        "visits": sum(r["visits"] for r in by_tutor),
        "unfunded_visits": sum(r["unfunded_visits"] for r in by_tutor),
    }
    owed_or_paid = balances["payable"] + balances["transit"] + balances["paid"]
    ledger_view = {**{f"{k}_fen": v for k, v in balances.items()},
                   "subsidies_owed_or_paid_fen": owed_or_paid,
                   "agrees": owed_or_paid == totals["subsidy_fen"]
                   and balances["budget"] == totals["budget_balance_fen"]}
    return {"term": term, "district": district, "generated_at": clock.stamp(),
            "by_source": by_source, "by_school": by_school, "by_tutor": by_tutor,
            "totals": totals, "ledger": ledger_view}


def _by_source(ledger: Ledger, district: str, term: str) -> list[dict[str, Any]]:
    budgets = [chart.budget(district, term, s) for s in chart.SOURCES]
    balances = ledger.balances(budgets)
    flows = ledger.category_sums(budgets)
    rows = []
    for source_name, account in zip(chart.SOURCES, budgets, strict=True):
        cats = flows.get(account, {})
        rows.append({"source": source_name, "funded_fen": cats.get("funding", 0),
                     "transferred_fen": cats.get("transfer", 0),
                     "subsidies_fen": cats.get("subsidy", 0),
                     "balance_fen": balances[account]})
    return rows


def ledger_balances(db: Database, district: str, term: str) -> dict[str, int]:
    """The term's account balances summed by kind (source, budget, payable, transit, paid)."""
    out = dict.fromkeys(chart.KINDS, 0)
    for acc in db.ledger_accounts.find({"district": district, "term": term},
                                       {"kind": 1, "balance": 1}):
        out[acc["kind"]] += int(acc["balance"])
    return out
