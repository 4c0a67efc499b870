"""The district × term figures, computed from the fact documents at read time.

Every figure is a count over facts (docs/monitoring.md defines each exactly), so the same
facts always give the same figures, whatever order they were folded in. The facts of a
term are read by `term_facts.load`, then grouped here: distinct pupils need sets, and the
stand-in server groups by one field only (kit/mongo.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from services.contracts.monitoring import KINDS, TUTOR_VISIT
from services.monitoring import admissions
from services.monitoring.facts import RATED
from services.monitoring.term_facts import Term


def rate(part: float, whole: float) -> float | None:
    """part ÷ whole, rounded to 4 places; None when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None


# -- per school ----------------------------------------------------------------------------
@dataclass
class Tally:
    """What one school (or the whole district) did this term."""

    pupils: set[str] = field(default_factory=set)
    headcount: int = 0
    trips: int = 0
    attended: int = 0
    recorded: int = 0
    no_shows: int = 0
    booked_on_recorded: int = 0
    pupils_attended: int = 0
    seats: int = 0
    visits: int = 0
    visit_hours: float = 0.0
    visit_pupils: int = 0
    paid_fen: int = 0  # subsidies paid for the visits counted
    paid_visits: int = 0
    paid_pupils: int = 0  # the students of those paid visits
    kinds: set[str] = field(default_factory=set)

    def add_trip(self, trip: dict[str, Any]) -> None:
        self.trips += 1
        self.seats += int(trip.get("students", 0))
        att = trip.get("attendance")
        if not att:
            return
        self.recorded += 1
        self.booked_on_recorded += att["students_booked"]
        self.pupils_attended += att["students_attended"]
        if att["no_show"]:
            self.no_shows += 1
        if att["students_attended"] <= 0:
            return
        self.attended += 1
        if trip.get("category"):
            self.kinds.add(trip["category"])
        self.pupils.update(att.get("pupil_ids") or ())
        self.headcount += att.get("headcount", 0)

    def add_visit(self, visit: dict[str, Any]) -> None:
        self.visits += 1
        self.visit_hours += float(visit.get("hours", 0))
        self.visit_pupils += int(visit.get("students", 0))
        self.kinds.add(TUTOR_VISIT)
        if visit.get("subsidy_fen") is not None:
            self.paid_fen += visit["subsidy_fen"]
            self.paid_visits += 1
            self.paid_pupils += int(visit.get("students", 0))
        if visit.get("pupil_ids") is not None:
            self.pupils.update(visit["pupil_ids"])
        else:
            self.headcount += int(visit.get("students", 0))

    @property
    def took_part(self) -> bool:
        return self.attended > 0 or self.visits > 0


def tallies(facts: Term) -> dict[str, Tally]:
    by_school = {sid: Tally() for sid in facts.schools}
    for trip in facts.trips:
        by_school[trip["school_id"]].add_trip(trip)
    for visit in facts.visits:
        by_school[visit["school_id"]].add_visit(visit)
    return by_school


def _merged(parts: list[Tally]) -> Tally:
    total = Tally()
    for t in parts:
        total.pupils |= t.pupils
        total.kinds |= t.kinds
        for name in ("headcount", "trips", "attended", "recorded", "no_shows",
                     "booked_on_recorded", "pupils_attended", "seats", "visits",
                     "visit_hours", "visit_pupils", "paid_fen", "paid_visits",
                     "paid_pupils"):
            setattr(total, name, getattr(total, name) + getattr(t, name))
    return total


def _tally_figures(t: Tally, enrolment: int) -> dict[str, Any]:
    participants = len(t.pupils)
    return {
        "enrolment": enrolment,
        "participants": participants,
        "participation_rate": rate(participants, enrolment),
        "headcount_pupil_visits": t.headcount,
        "participation_rate_upper": (min(1.0, rate(participants + t.headcount, enrolment))
                                     if enrolment else None),
        "trips_confirmed": t.trips,
        "trips_recorded": t.recorded,
        "trips_attended": t.attended,
        "trips_awaiting_attendance": t.trips - t.recorded,
        "pupils_booked_on_recorded": t.booked_on_recorded,
        "pupils_attended": t.pupils_attended,
        "attendance_rate": rate(t.pupils_attended, t.booked_on_recorded),
        "no_shows": t.no_shows,
        "no_show_rate": rate(t.no_shows, t.recorded),
        "seats_confirmed": t.seats,
        "tutor_visits_delivered": t.visits,
        "tutor_visit_hours": round(t.visit_hours, 2),
        "tutor_visit_pupils": t.visit_pupils,
        "tutor_visits_paid": t.paid_visits,
        "subsidy_paid_fen": t.paid_fen,
        "subsidy_per_pupil_served_fen": (round(t.paid_fen / t.paid_pupils)
                                         if t.paid_pupils else None),
        "kinds": sorted(t.kinds),
        "variety": len(t.kinds),
    }


# -- satisfaction ----------------------------------------------------------------------------
def satisfaction(answers: list[dict[str, Any]], invited: int) -> dict[str, Any]:
    """Ratings of 1–5 on the fixed questions: the share ≥ 4, the mean, the distribution."""
    dist = {str(n): 0 for n in range(1, 6)}
    per_question: dict[str, list[int]] = {q: [] for q in RATED}
    roles: dict[str, int] = defaultdict(int)
    for answer in answers:
        if not answer.get("ratings"):
            continue
        roles[answer.get("respondent") or "guardian"] += 1
        for question, value in answer["ratings"].items():
            dist[str(value)] += 1
            per_question.setdefault(question, []).append(value)
    ratings = [v for values in per_question.values() for v in values]
    guardians = roles.get("guardian", 0)
    return {
        "answers": sum(roles.values()),
        "guardian_answers": guardians,
        "teacher_answers": roles.get("teacher", 0),
        "invited_guardians": invited,
        "response_rate": rate(guardians, invited),
        "ratings": len(ratings),
        "satisfaction_rate": rate(sum(1 for v in ratings if v >= 4), len(ratings)),
        "mean": round(sum(ratings) / len(ratings), 3) if ratings else None,
        "distribution": dist,
        "by_question": {q: {"ratings": len(vs), "mean": round(sum(vs) / len(vs), 3) if vs
                            else None, "satisfaction_rate": rate(sum(1 for v in vs if v >= 4),
                                                                 len(vs))}
                        for q, vs in per_question.items()},
    }


# -- the views -------------------------------------------------------------------------------
def priority(facts: Term, by_school: dict[str, Tally]) -> dict[str, Any]:
    """Seats confirmed to rural and under-resourced schools against their enrolment share."""
    prio = {sid for sid, s in facts.schools.items() if s.get("rural") or s.get("under_resourced")}
    enrolment = sum(int(s.get("students", 0)) for s in facts.schools.values())
    prio_enrolment = sum(int(facts.schools[s].get("students", 0)) for s in prio)
    seats = sum(t.seats for t in by_school.values())
    prio_seats = sum(by_school[s].seats for s in prio)
    seat_share, enrol_share = rate(prio_seats, seats), rate(prio_enrolment, enrolment)
    return {"priority_schools": len(prio), "priority_enrolment": prio_enrolment,
            "enrolment": enrolment, "enrolment_share": enrol_share,
            "priority_seats": prio_seats, "seats": seats, "seat_share": seat_share,
            "gap": (round(seat_share - enrol_share, 4)
                    if seat_share is not None and enrol_share is not None else None),
            "received_share": (seat_share >= enrol_share
                               if seat_share is not None and enrol_share is not None else None)}


def school_rows(facts: Term, by_school: dict[str, Tally]) -> list[dict[str, Any]]:
    answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in facts.answers:
        answers[a.get("school_id") or ""].append(a)
    rows = []
    for sid, school in sorted(facts.schools.items(), key=lambda kv: (kv[1].get("name") or "",
                                                                      kv[0])):
        tally = by_school[sid]
        sat = satisfaction(answers.get(sid, []), 0)
        rows.append({"school_id": sid, "name": school.get("name"),
                     "rural": bool(school.get("rural")),
                     "under_resourced": bool(school.get("under_resourced")),
                     **_tally_figures(tally, int(school.get("students", 0))),
                     "covered": tally.took_part, "answers": sat["answers"],
                     "satisfaction_rate": sat["satisfaction_rate"],
                     "satisfaction_mean": sat["mean"]})
    return rows


def venue_rows(facts: Term) -> list[dict[str, Any]]:
    """Seats offered (capacity of sessions not cancelled), claimed, attended, per venue."""
    rows = {vid: {"venue_id": vid, "name": v.get("name"), "sessions": 0, "seats_offered": 0,
                  "seats_claimed": 0, "seats_attended": 0, "claims": 0}
            for vid, v in facts.venues.items()}
    for session in facts.sessions.values():
        row = rows.get(session.get("venue_id"))
        if row is not None and not session.get("cancelled") and "capacity" in session:
            row["sessions"] += 1
            row["seats_offered"] += int(session["capacity"])
    for claim in facts.venue_claims:
        row = rows.get(claim["venue_id"])
        if row is None:
            continue
        row["claims"] += 1
        row["seats_claimed"] += int(claim.get("seats", 0))
        att = claim.get("attendance")
        if att:
            row["seats_attended"] += att["students_attended"] + att.get("teachers_attended", 0)
    for row in rows.values():
        row["claim_rate"] = rate(row["seats_claimed"], row["seats_offered"])
        row["attendance_rate"] = rate(row["seats_attended"], row["seats_claimed"])
    return sorted(rows.values(), key=lambda r: (r["name"] or "", r["venue_id"]))


def trend(facts: Term) -> list[dict[str, Any]]:
    """Per week: trips attended, pupil visits, and participation to date (distinct pupils)."""
    weeks: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "trips_attended": 0, "pupil_visits": 0, "tutor_visits": 0, "pupils": set()})
    for trip in facts.trips:
        att = trip.get("attendance")
        if att and att["students_attended"] > 0:
            week = weeks[trip["week"]]
            week["trips_attended"] += 1
            week["pupil_visits"] += att["students_attended"]
            week["pupils"].update(att.get("pupil_ids") or ())
    for visit in facts.visits:
        week = weeks[visit["week"]]
        week["tutor_visits"] += 1
        week["pupil_visits"] += int(visit.get("students", 0))
        week["pupils"].update(visit.get("pupil_ids") or ())
    enrolment = sum(int(s.get("students", 0)) for s in facts.schools.values())
    seen: set[str] = set()
    rows = []
    for label in sorted(weeks):
        week = weeks[label]
        new = week.pop("pupils") - seen
        seen |= new
        rows.append({"week": label, **week, "new_participants": len(new),
                     "participants_to_date": len(seen),
                     "participation_rate_to_date": rate(len(seen), enrolment)})
    return rows


def categories(facts: Term, by_school: dict[str, Tally]) -> list[dict[str, Any]]:
    """The 监测直报 view: per kind of activity, the schools running it and their share."""
    rows = []
    for kind in KINDS:
        with_kind = [sid for sid, t in by_school.items() if kind in t.kinds]
        trips = [t for t in facts.trips if t.get("category") == kind and t.get("attendance")
                 and t["attendance"]["students_attended"] > 0]
        pupils = sum(t["attendance"]["students_attended"] for t in trips)
        if kind == TUTOR_VISIT:
            trips, pupils = facts.visits, sum(int(v.get("students", 0)) for v in facts.visits)
        rows.append({"category": kind, "schools": len(with_kind),
                     "share_of_schools": rate(len(with_kind), len(by_school)),
                     "activities": len(trips), "pupil_visits": pupils})
    return rows


def grades(facts: Term) -> list[dict[str, Any]]:
    """Per grade: trips confirmed, and pupils booked on them (classes carry their grade)."""
    rows: dict[int, dict[str, int]] = {}
    for trip in facts.trips:
        for grade, students in (trip.get("by_grade") or {}).items():
            row = rows.setdefault(int(grade), {"trips": 0, "pupils_booked": 0,
                                               "pupils_booked_on_attended": 0})
            row["trips"] += 1
            row["pupils_booked"] += students
            att = trip.get("attendance")
            if att and att["students_attended"] > 0:
                row["pupils_booked_on_attended"] += students
    return [{"grade": g, **rows[g]} for g in sorted(rows)]


def report(facts: Term) -> dict[str, Any]:
    """Every view of the term at once: what the cache keeps and the workbook files."""
    by_school = tallies(facts)
    total = _merged(list(by_school.values()))
    enrolment = sum(int(s.get("students", 0)) for s in facts.schools.values())
    covered = sum(1 for t in by_school.values() if t.took_part)
    summary = _tally_figures(total, enrolment)
    summary.pop("kinds")
    summary.pop("variety")
    sat = satisfaction(facts.answers, facts.invited)
    summary.update({
        "schools": len(facts.schools), "schools_covered": covered,
        "coverage_rate": rate(covered, len(facts.schools)),
        "variety_mean": (round(sum(len(t.kinds) for t in by_school.values()) / len(by_school),
                               3) if by_school else None),
        "answers": sat["answers"], "response_rate": sat["response_rate"],
        "satisfaction_rate": sat["satisfaction_rate"], "satisfaction_mean": sat["mean"],
    })
    return {"summary": summary, "categories": categories(facts, by_school),
            "grades": grades(facts), "satisfaction": sat,
            "priority": priority(facts, by_school),
            "schools": school_rows(facts, by_school), "venues": venue_rows(facts),
            "trend": trend(facts),
            "admissions": admissions.figures(facts.bookings, facts.venues)}
