"""The facts a district × term report counts: read by term, kept to the district, the
caller's scope and the filter, and joined (trips with their sessions, visits with their
subsidies, families' and teachers' bookings).

One indexed query per collection (`term`); the figures are computed from the result in
`figures.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pymongo.database import Database

from services.contracts.monitoring import TUTOR_VISIT
from services.monitoring import admissions
from services.monitoring.facts import week_of

DELIVERED = ("delivered", "confirmed")

@dataclass(frozen=True)
class Scope:
    """Whose facts a report counts: all of a district's (None), or some schools or venues."""

    schools: frozenset[str] | None = None
    venues: frozenset[str] | None = None

    @property
    def whole(self) -> bool:
        return self.schools is None and self.venues is None

    def as_dict(self) -> dict[str, Any]:
        return {"schools": sorted(self.schools) if self.schools is not None else None,
                "venues": sorted(self.venues) if self.venues is not None else None}


@dataclass(frozen=True)
class Filter:
    """A drill-down: one kind of activity, one grade, one week (Monday)."""

    category: str | None = None
    grade: int | None = None
    week: str | None = None

    @classmethod
    def of(cls, query: dict[str, Any]) -> Filter:
        day = query.get("week")
        return cls(query.get("category"), query.get("grade"),
                   week_of(day) if isinstance(day, date) else None)

    def trip(self, claim: dict[str, Any], category: str | None) -> bool:
        return ((self.category is None or self.category == category)
                and (self.grade is None or self.grade in claim.get("grades", ()))
                and (self.week is None or self.week == claim.get("week")))

    def visit(self, visit: dict[str, Any]) -> bool:
        return ((self.category in (None, TUTOR_VISIT)) and self.grade is None
                and (self.week is None or self.week == visit.get("week")))


@dataclass
class Term:
    """A term's facts for one district, joined: trips (claims), visits, answers."""

    district_id: str
    term: str
    schools: dict[str, dict[str, Any]]
    venues: dict[str, dict[str, Any]]
    sessions: dict[str, dict[str, Any]]
    trips: list[dict[str, Any]] = field(default_factory=list)
    visits: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    venue_claims: list[dict[str, Any]] = field(default_factory=list)
    invited: int = 0  # guardians sent a survey about these trips
    bookings: list[dict[str, Any]] = field(default_factory=list)  # families, training


def members(db: Database, collection: str, district_id: str) -> dict[str, dict[str, Any]]:
    """A district's schools (or venues): by id, and by name those registered before
    district ids (their events carried the name only; identity's event names the id)."""
    found = {d["_id"]: d for d in db[collection].find({"district_id": district_id})}
    district = db.districts.find_one({"_id": district_id}) or {}
    for name in {district_id, district.get("name")} - {None}:
        for doc in db[collection].find({"district_name": name}):
            if doc.get("district_id") in (None, district_id):
                found[doc["_id"]] = doc
    return found


def load(db: Database, district_id: str, term: str, scope: Scope, flt: Filter) -> Term:
    """The facts a report counts, read by term and kept to the district, scope and filter."""
    schools = members(db, "schools", district_id)
    if scope.schools is not None:
        schools = {k: v for k, v in schools.items() if k in scope.schools}
    claims = narrow(db.claims, term, scope, {"confirmed": True})
    sessions = _sessions(db, term, scope, {c["session_id"] for c in claims})
    attendance = {a["_id"]: a for a in narrow(db.attendance, term, scope)}
    facts = Term(district_id, term, schools, {}, {
        k: v for k, v in sessions.items()
        if flt.category in (None, v.get("category")) and flt.week in (None, v.get("week"))})
    for claim in claims:
        claim["category"] = (sessions.get(claim["session_id"]) or {}).get("category")
        claim["attendance"] = None if claim.get("cancelled") else attendance.get(claim["_id"])
        if not claim.get("cancelled") and flt.trip(claim, claim["category"]) and (
                scope.schools is None or claim["school_id"] in scope.schools):
            facts.venue_claims.append(claim)
        if (claim["school_id"] in schools and not claim.get("cancelled")
                and _in_venues(scope, claim) and flt.trip(claim, claim["category"])):
            facts.trips.append(claim)
    for visit in narrow(db.tutor_visits, term, scope):
        if (visit["school_id"] in schools and visit.get("status") in DELIVERED
                and _in_venues(scope, visit) and flt.visit(visit)):
            facts.visits.append(visit)
    _join_subsidies(db, facts.visits)
    if scope.venues is not None:  # a venue sees the schools that came to it
        came = {t["school_id"] for t in facts.trips} | {v["school_id"] for v in facts.visits}
        facts.schools = {k: v for k, v in schools.items() if k in came}
    trip_ids = {t["_id"] for t in facts.trips} | {v["_id"] for v in facts.visits}
    facts.answers = _of_trips(db.answers, term, scope, trip_ids)
    facts.invited = sum(s.get("guardians_invited", 0)
                        for s in _of_trips(db.surveys, term, scope, trip_ids))
    venue_ids = {t["venue_id"] for t in facts.trips}
    if scope.venues is None and scope.schools is None:
        venue_ids |= set(members(db, "venues", district_id))
    if scope.venues is not None:
        venue_ids = set(scope.venues)
    facts.venues = {v["_id"]: v for v in db.venues.find({"_id": {"$in": sorted(venue_ids)}})}
    for vid in venue_ids - set(facts.venues):
        facts.venues[vid] = {"_id": vid, "name": None}
    facts.bookings = _bookings(db, facts, scope, flt)
    return facts


def _bookings(db: Database, facts: Term, scope: Scope, flt: Filter) -> list[dict[str, Any]]:
    """Family and training bookings of the district's venues (admissions.py); a grade
    drill-down leaves none (they have no grade), like tutor visits."""
    district_venues = set(members(db, "venues", facts.district_id))

    def keep(booking: dict[str, Any]) -> bool:
        in_district = (booking.get("district_id") == facts.district_id
                       or (booking.get("district_id") is None
                           and booking["venue_id"] in district_venues))
        return (in_district and flt.grade is None
                and flt.category in (None, booking.get("category"))
                and flt.week in (None, booking.get("week")))

    return admissions.load(db, facts.term, scope.schools, scope.venues, keep)


def _join_subsidies(db: Database, visits: list[dict[str, Any]]) -> None:
    """Each counted visit's paid subsidy (`subsidy_fen`), read by visit id, 1,000 at once."""
    by_id = {v["_id"]: v for v in visits}
    ids = sorted(by_id)
    for start in range(0, len(ids), 1_000):
        for paid in db.subsidies.find({"_id": {"$in": ids[start:start + 1_000]}},
                                      {"amount_fen": 1}):
            by_id[paid["_id"]]["subsidy_fen"] = int(paid["amount_fen"])


def narrow(collection: Any, term: str, scope: Scope,
           extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A term's documents, read by school or venue when the scope is one (an indexed
    equality each), else by term."""
    flt = {**(extra or {})}
    if scope.schools is not None or scope.venues is not None:
        field, ids = (("school_id", scope.schools) if scope.schools is not None
                      else ("venue_id", scope.venues))
        return [d for i in sorted(ids) for d in collection.find({field: i, **flt})
                if d.get("term") == term]
    return list(collection.find({"term": term, **flt}))


def _sessions(db: Database, term: str, scope: Scope, ids: set[str]
              ) -> dict[str, dict[str, Any]]:
    """The sessions a report needs: the term's, a venue's, or just those a school claimed."""
    if scope.schools is not None:
        found = db.sessions.find({"_id": {"$in": sorted(ids)}})
    elif scope.venues is not None:
        found = (s for v in sorted(scope.venues) for s in db.sessions.find({"venue_id": v}))
    else:
        found = db.sessions.find({"term": term})
    return {s["_id"]: s for s in found if s.get("term") in (term, None) or s["_id"] in ids}


def _of_trips(collection: Any, term: str, scope: Scope, trip_ids: set[str]
              ) -> list[dict[str, Any]]:
    """Survey documents about these trips (a school's: read by school; else the term's,
    and those that name no term)."""
    if scope.schools is not None:
        found = [d for s in sorted(scope.schools) for d in collection.find({"school_id": s})]
    else:
        found = [d for flt in ({"term": term}, {"term": None}) for d in collection.find(flt)]
    return [d for d in found if d.get("claim_id") in trip_ids or d.get("visit_id") in trip_ids]


def _in_venues(scope: Scope, fact: dict[str, Any]) -> bool:
    return scope.venues is None or fact.get("venue_id") in scope.venues
