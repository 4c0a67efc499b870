from __future__ import annotations

import itertools
import uuid
from datetime import date

import pytest

from services.funding.ledger import Ledger
from services.funding.repository import FundingRepository
from services.kit.config import Settings

DISTRICT = "测试区"
TERM = "2026-autumn"
_visits = itertools.count(1)




@pytest.fixture()
def ledger(db):
    books = Ledger(db)
    books.ensure_indexes()
    return books


@pytest.fixture()
def books(db):
    """The funding service's domain objects on a fresh database."""
    repo = FundingRepository(db, Settings())
    repo.ensure_indexes()
    return repo


def visit(tutor="tut_1", school="sch_1", level="senior", hours=2.0, day=date(2026, 10, 9),
          district=DISTRICT, term=TERM, **extra):
    """TutorVisitData as booking sends it (JSON: the date is a string)."""
    n = next(_visits)
    return {"visit_id": extra.pop("visit_id", f"vis_{n:06d}_{uuid.uuid4().hex[:6]}"),
            "tutor_id": tutor, "tutor_name": f"Tutor {tutor}", "tutor_level": level,
            "venue_id": "ven_1", "school_id": school, "district": district,
            "date": day.isoformat(), "term": term, "hours": hours, "students": 40,
            "subject": "astronomy", **extra}


def fund(books, amount, source="fiscal_subsidy", term=TERM, sub="fin-a"):
    return books.budgets.fund(DISTRICT, sub, {"term": term, "source": source,
                                              "amount_fen": amount, "memo": "test"}, None)


def card(books, rates=None, day=date(2026, 9, 1), **caps):
    data = {"effective_from": day, "rates": rates or {"junior": 6_000, "intermediate": 8_000,
                                                       "senior": 10_000, "expert": 15_000},
            "cap_per_visit_fen": caps.get("per_visit"),
            "cap_per_school_term_fen": caps.get("per_school_term"), "note": None}
    return books.cards.create(DISTRICT, data, "fin-a")
