"""Family (亲子) and teacher-training bookings: counted apart from school trips.

Admissions announces each individual booking confirmed, cancelled and checked in at the
door (services/contracts/admissions.py). One fact document per booking id (`bookings`),
folded like the other facts (facts.py): every event `$set`s the booking's immutable facts
(session, venue, audience, adults, children) to the same values, and its own terminal flag
(`confirmed`, `cancelled`, `checked_in` with the check-in's day), never clearing another's.
So a replay, a duplicate or any order gives the same document, and the figures (computed at
read time, docs/monitoring.md "Families and teacher training") the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from pymongo.database import Database

from services.contracts.terms import SHANGHAI, term_of
from services.kit import clock

AUDIENCES = {"family": "family", "teachers": "training"}  # the event's audience → the view
COUNTS = ("bookings", "people_booked", "adults_booked", "children_booked", "cancelled",
          "checked_in", "people_checked_in", "adults_checked_in", "children_checked_in")


def _facts(d: dict[str, Any]) -> dict[str, Any]:
    return {"session_id": d["session_id"], "venue_id": d["venue_id"],
            "district_id": d.get("district_id") or None, "audience": d["audience"],
            "school_id": d.get("school_id") or None, "adults": int(d["adults"]),
            "children": int(d["children"]), "people": int(d["people"])}


def fold(db: Database, envelope: dict[str, Any]) -> None:
    """One admissions event into its booking's document (idempotent, order-tolerant)."""
    d = envelope["data"]
    kind = envelope["type"].split(".", 1)[1]
    values = _facts(d)
    if kind == "booking_confirmed":
        values["confirmed"] = True
    elif kind == "booking_cancelled":
        values["cancelled"] = True
    else:  # checked_in: it held a ticket, so it was confirmed; the door's day counts
        day = clock.parse(d["checked_in_at"]).astimezone(SHANGHAI).date()
        values.update(confirmed=True, checked_in=True, checked_in_at=d["checked_in_at"],
                      term=term_of(day), week=(day - timedelta(days=day.weekday())).isoformat())
    db.bookings.update_one({"_id": d["booking_id"]}, {"$set": values}, upsert=True)


def ensure_indexes(db: Database) -> None:
    for name in ("session_id", "term", "venue_id", "school_id"):
        db.bookings.create_index(name)


def load(db: Database, term: str, schools: frozenset[str] | None,
         venues: frozenset[str] | None, keep: Any) -> list[dict[str, Any]]:
    """The term's bookings (on a session of the term, or checked in during it), each with
    its week and category, kept by `keep(booking)` (district and drill-down). Read by
    school or venue for their own report (training seats are their teachers'), else by the
    term's sessions and check-ins."""
    if schools is not None:
        found = [b for s in sorted(schools) for b in db.bookings.find({"school_id": s})]
    elif venues is not None:
        found = [b for v in sorted(venues) for b in db.bookings.find({"venue_id": v})]
    else:
        ids = [s["_id"] for s in db.sessions.find({"term": term}, {"_id": 1})]
        found = list(db.bookings.find({"term": term}))
        found += [b for start in range(0, len(ids), 1_000)
                  for b in db.bookings.find({"session_id": {"$in": ids[start:start + 1_000]}})]
    sessions = _sessions_of(db, {b["session_id"] for b in found})
    out, seen = [], set()
    for booking in found:
        session = sessions.get(booking["session_id"]) or {}
        if booking["_id"] in seen or (session.get("term") or booking.get("term")) != term:
            continue
        seen.add(booking["_id"])
        booking["week"] = session.get("week") or booking.get("week")
        booking["category"] = session.get("category")
        if booking.get("audience") in AUDIENCES and keep(booking):
            out.append(booking)
    return out


def _sessions_of(db: Database, ids: set[str]) -> dict[str, dict[str, Any]]:
    ordered = sorted(ids)
    return {s["_id"]: s for start in range(0, len(ordered), 1_000)
            for s in db.sessions.find({"_id": {"$in": ordered[start:start + 1_000]}},
                                      {"term": 1, "week": 1, "category": 1})}


def _add(row: dict[str, Any], b: dict[str, Any]) -> None:
    if (b.get("confirmed") and not b.get("cancelled")) or b.get("checked_in"):
        row["bookings"] += 1
        row["people_booked"] += b["people"]
        row["adults_booked"] += b["adults"]
        row["children_booked"] += b["children"]
    if b.get("cancelled") and not b.get("checked_in"):
        row["cancelled"] += 1
    if b.get("checked_in"):
        row["checked_in"] += 1
        row["people_checked_in"] += b["people"]
        row["adults_checked_in"] += b["adults"]
        row["children_checked_in"] += b["children"]


def _empty() -> dict[str, Any]:
    return dict.fromkeys(COUNTS, 0)


def _rated(row: dict[str, Any]) -> dict[str, Any]:
    row["check_in_rate"] = (round(row["checked_in"] / row["bookings"], 4)
                            if row["bookings"] else None)
    return row


def figures(bookings: list[dict[str, Any]], venues: dict[str, dict[str, Any]]
            ) -> dict[str, Any]:
    """Per audience (family, training): bookings, people, adults and children booked and
    checked in; and the same per venue, week and audience."""
    totals = {view: _empty() for view in AUDIENCES.values()}
    rows: dict[tuple[str, str, str], dict[str, Any]] = defaultdict(_empty)
    for b in bookings:
        view = AUDIENCES[b["audience"]]
        _add(totals[view], b)
        _add(rows[(b["venue_id"], b.get("week") or "", view)], b)
    by_venue_week = [
        _rated({"venue_id": vid, "name": (venues.get(vid) or {}).get("name"),
                "week": week or None, "audience": view, **row})
        for (vid, week, view), row in sorted(rows.items())]
    return {**{view: _rated(row) for view, row in totals.items()},
            "by_venue_week": by_venue_week}
