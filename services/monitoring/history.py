"""What window allocation weighs, from the same facts the district sees (issue 14, item 7).

A school's confirmed visits this term are its confirmed claims not cancelled; its no-shows
are its claims whose latest attendance record says nobody came. Booking asked its own
claims before; it now asks `monitoring.school_history` (docs/monitoring.md, "Fairness").
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database


def school_history(db: Database, school_ids: list[str], term: str) -> dict[str, dict[str, int]]:
    """{school_id: {confirmed_visits, no_shows}} for each school asked about (0 if none)."""
    out = {sid: {"confirmed_visits": 0, "no_shows": 0} for sid in dict.fromkeys(school_ids)}
    ids = list(out)
    for start in range(0, len(ids), 1_000):  # two queries per 1,000 schools, not two each
        chunk = {"school_id": {"$in": ids[start:start + 1_000]}, "term": term}
        for claim in db.claims.find({**chunk, "confirmed": True},
                                    {"school_id": 1, "cancelled": 1}):
            if not claim.get("cancelled"):
                out[claim["school_id"]]["confirmed_visits"] += 1
        for att in db.attendance.find({**chunk, "no_show": True}, {"school_id": 1}):
            out[att["school_id"]]["no_shows"] += 1
    return out


def counts(db: Database, term: str | None = None) -> dict[str, Any]:
    """The read model's own counts, for `kepu monitoring check` to set beside the producers'."""
    flt = {"term": term} if term else {}
    claims = list(db.claims.find(flt, {"confirmed": 1, "cancelled": 1}))
    return {
        "schools": db.schools.count_documents({}),
        "venues": db.venues.count_documents({}),
        "sessions": db.sessions.count_documents(flt),
        "claims_confirmed": sum(1 for c in claims if c.get("confirmed") and not c.get("cancelled")),
        "claims_cancelled": sum(1 for c in claims if c.get("cancelled")),
        "attendance_records": db.attendance.count_documents(flt),
        "tutor_visits": db.tutor_visits.count_documents(flt),
        "answers": db.answers.count_documents(flt),
        "subsidies_paid": db.subsidies.count_documents(flt),
    }
