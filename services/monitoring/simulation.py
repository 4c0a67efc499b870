"""A simulated term as the producers would announce it: the envelopes, and the plain facts.

Tests fold `envelopes()` through the projection and compare its figures with the ones
they compute from `World` themselves; the bench builds a district of 300 schools the same
way. Envelopes are shaped exactly as booking, venues and notifications publish them
(services/contracts), with `pupil_ids` on per-pupil attendance and without on head counts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.kit.envelope import new_envelope

CATEGORIES = ("science", "arts", "sports", "labour", "moral", "innovation")


@dataclass
class School:
    school_id: str
    district_id: str
    students: int
    rural: bool = False
    under_resourced: bool = False
    name: str = ""


@dataclass
class Session:
    session_id: str
    venue_id: str
    category: str
    starts_at: datetime
    capacity: int
    cancelled: bool = False


@dataclass
class Claim:
    claim_id: str
    school_id: str
    session_id: str
    groups: list[dict[str, Any]]
    cancelled: bool = False
    waitlisted_first: bool = False
    attended: int | None = None  # pupils who came; None: not recorded
    pupil_ids: list[str] | None = None  # per-pupil record; None: head count
    corrected_from: int | None = None  # an earlier record the venue corrected

    @property
    def students(self) -> int:
        return sum(g["students"] for g in self.groups)

    @property
    def teachers(self) -> int:
        return sum(g["teachers"] for g in self.groups)


@dataclass
class Visit:
    visit_id: str
    school_id: str
    venue_id: str
    day: datetime
    students: int
    statuses: tuple[str, ...]  # as they happened, e.g. booked, delivered, confirmed
    paid_fen: int | None = None  # its subsidy, once paid (after the statuses)


@dataclass
class Answer:
    answer_id: str
    claim_id: str | None
    visit_id: str | None
    school_id: str
    ratings: dict[str, int]
    respondent: str = "guardian"
    earlier: dict[str, int] | None = None  # the answer before it was changed


@dataclass
class World:
    term: str = "2026-autumn"
    schools: list[School] = field(default_factory=list)
    venues: dict[str, str] = field(default_factory=dict)  # venue_id -> district_id
    sessions: list[Session] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    clock: datetime = field(default_factory=lambda: datetime(2026, 9, 1, tzinfo=UTC))

    def session(self, session_id: str) -> Session:
        return next(s for s in self.sessions if s.session_id == session_id)

    # -- envelopes -----------------------------------------------------------------------
    def _at(self) -> datetime:
        self.clock += timedelta(seconds=1)
        return self.clock

    def _env(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        return new_envelope(event_type, 1, data, occurred_at=self._at())

    def envelopes(self) -> list[dict[str, Any]]:
        """Every event of the term, in the order the producers would publish them."""
        out = [self._school(s) for s in self.schools]
        out += [self._env("venues.venue_registered", {
            "venue_id": vid, "name": f"Venue {vid}", "kind": "science_museum",
            "district": district, "district_id": district, "location": LOC,
            "address": "1 Road", "timezone": "Asia/Shanghai"})
            for vid, district in self.venues.items()]
        for s in self.sessions:
            out.append(self._env("venues.session_published", _session_data(s)))
        for c in self.claims:
            out += self._claim(c)
        for s in self.sessions:
            if s.cancelled:
                out.append(self._env("venues.session_cancelled", {
                    "session_id": s.session_id, "venue_id": s.venue_id, "reason": "storm",
                    "starts_at": _z(s.starts_at)}))
        for v in self.visits:
            out += [self._env(f"booking.tutor_visit_{status}", self._visit_data(v, status))
                    for status in v.statuses]
            if v.paid_fen is not None:
                out.append(self._env("funding.subsidy_paid", {
                    "visit_id": v.visit_id, "school_id": v.school_id,
                    "district_id": next(s.district_id for s in self.schools
                                        if s.school_id == v.school_id),
                    "term": self.term, "amount_fen": v.paid_fen,
                    "paid_at": _z(v.day + timedelta(days=30)), "tutor_id": "tut_1",
                    "statement_id": "stm_1", "reference": f"KP1-{v.visit_id}"}))
        out += [self._env("notifications.survey_opened", data) for data in self.surveys()]
        for a in self.answers:
            if a.earlier:
                out.append(self._env("notifications.survey_answered",
                                     _answer(a, a.earlier, 1)))
                out.append(self._env("notifications.survey_changed",
                                     {**_answer(a, a.ratings, 2), "previous": a.earlier}))
            else:
                out.append(self._env("notifications.survey_answered", _answer(a, a.ratings, 1)))
        return out

    def surveys(self) -> list[dict[str, Any]]:
        """A survey per trip that took place: its guardians (one per pupil) and teachers."""
        out = []
        for c in self.claims:
            if c.attended and not c.cancelled:
                out.append(_survey(f"srv_{c.claim_id}", "session", c.school_id, c.attended,
                                   c.teachers, claim_id=c.claim_id))
        for v in self.visits:
            if "confirmed" in v.statuses:
                out.append(_survey(f"srv_{v.visit_id}", "tutor_visit", v.school_id,
                                   v.students, 1, visit_id=v.visit_id))
        return out

    def _school(self, s: School) -> dict[str, Any]:
        data = {"school_id": s.school_id, "name": s.name or f"School {s.school_id}",
                "district": s.district_id, "location": LOC, "rural": s.rural,
                "under_resourced": s.under_resourced, "students": s.students}
        if not s.school_id.endswith("-old"):  # an older event carries the district name only
            data["district_id"] = s.district_id
        return self._env("booking.school_registered", data)

    def _claim(self, c: Claim) -> list[dict[str, Any]]:
        s = self.session(c.session_id)
        trip = {"session_id": s.session_id, "title": "Trip", "venue_id": s.venue_id,
                "venue_name": f"Venue {s.venue_id}", "venue_address": "1 Road",
                "starts_at": _z(s.starts_at), "ends_at": _z(s.starts_at + timedelta(hours=2)),
                "timezone": "Asia/Shanghai", "what_to_bring": None, "price_fen": 0}
        out = []
        if c.waitlisted_first:
            out.append(self._env("booking.claim_waitlisted", {
                "claim_id": c.claim_id, "school_id": c.school_id,
                "session_id": c.session_id, "position": 1}))
        out.append(self._env("booking.claim_confirmed", {
            "claim_id": c.claim_id, "school_id": c.school_id, "school_name": "S",
            "session_id": c.session_id, "groups": c.groups,
            "seats": c.students + c.teachers, "trip": trip}))
        if c.cancelled:
            out.append(self._env("booking.claim_cancelled", {
                "claim_id": c.claim_id, "school_id": c.school_id,
                "session_id": c.session_id, "previous_status": "confirmed",
                "cancelled_by": "venue" if s.cancelled else "school", "reason": "r",
                "groups": c.groups, "trip": trip}))
        if c.corrected_from is not None:
            out.append(self._attended(c, c.corrected_from, None))
        if c.attended is not None:
            out.append(self._attended(c, c.attended, c.pupil_ids))
        return out

    def _attended(self, c: Claim, attended: int, pupils: list[str] | None) -> dict[str, Any]:
        s = self.session(c.session_id)
        data = {"claim_id": c.claim_id, "school_id": c.school_id,
                "session_id": c.session_id, "venue_id": s.venue_id, "district": "",
                "term": self.term, "students_booked": c.students,
                "students_attended": attended, "teachers_attended": min(attended, c.teachers),
                "no_show": attended == 0}
        if pupils is not None or c.corrected_from is None or attended != c.corrected_from:
            # the current shape: per class, with pupil ids for the pupil form; a corrected
            # record's first version goes in the older shape (no classes: a head count)
            data["form"] = "pupils" if pupils is not None else "count"
            data["groups"] = [{"label": g["label"], "students_booked": g["students"],
                               "students_attended": attended if i == 0 else 0,
                               "pupil_ids": (pupils if i == 0 else []) if pupils is not None
                               else None} for i, g in enumerate(c.groups)]
        return self._env("booking.visit_attended", data)

    def _visit_data(self, v: Visit, status: str) -> dict[str, Any]:
        data = {"visit_id": v.visit_id, "tutor_id": "tut_1", "tutor_name": "T",
                "tutor_level": "senior", "venue_id": v.venue_id, "school_id": v.school_id,
                "district": "", "date": v.day.date().isoformat(), "term": self.term,
                "hours": 2.0, "students": v.students, "subject": "astronomy"}
        if status == "cancelled":
            data.update(previous_status="confirmed", reason="r")
        return data


LOC = {"lat": 31.2, "lon": 121.5}


def _z(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _session_data(s: Session) -> dict[str, Any]:
    return {"session_id": s.session_id, "series_id": None, "venue_id": s.venue_id,
            "title": "Trip", "category": s.category, "audience": "students",
            "grades": [1, 9], "starts_at": _z(s.starts_at),
            "ends_at": _z(s.starts_at + timedelta(hours=2)), "capacity": s.capacity,
            "price_fen": 0, "claim_policy": "first_come", "window_closes_at": None,
            "timezone": "Asia/Shanghai"}


def _survey(survey_id: str, kind: str, school_id: str, guardians: int, teachers: int,
            claim_id: str | None = None, visit_id: str | None = None) -> dict[str, Any]:
    return {"survey_id": survey_id, "trip_kind": kind, "claim_id": claim_id,
            "visit_id": visit_id, "school_id": school_id, "term": "2026-autumn",
            "guardians_invited": guardians, "teachers_invited": teachers,
            "opened_at": "2026-12-01T00:00:00Z", "closes_at": "2026-12-08T00:00:00Z",
            "revision": 1}


def _answer(a: Answer, ratings: dict[str, int], revision: int) -> dict[str, Any]:
    trip = a.claim_id or a.visit_id
    return {"survey_id": f"srv_{trip}", "trip_kind": "session" if a.claim_id else "tutor_visit",
            "claim_id": a.claim_id, "visit_id": a.visit_id, "school_id": a.school_id,
            "term": None if revision == 1 and a.answer_id.endswith("0") else "2026-autumn",
            "respondent_kind": a.respondent, "respondent_id": a.answer_id,
            "ratings": ratings, "commented": False, "answered_at": "2026-12-01T00:00:00Z",
            "first_answered_at": "2026-12-01T00:00:00Z", "revision": revision}


# -- a district of any size -------------------------------------------------------------
def district(schools: int, sessions: int, claims: int, pupils_per_school: int,
             seed: int = 14, district_id: str = "dst_bench") -> World:
    """A term of one district: most attendance per pupil, some by head count, some no-shows,
    tutor visits and survey answers; sizes as asked (the bench: 300, 5,000, 50,000)."""
    rng = random.Random(seed)
    world = World()
    world.schools = [School(f"sch_{i:04d}", district_id, pupils_per_school,
                            rural=i % 7 == 0, under_resourced=i % 11 == 0)
                     for i in range(schools)]
    venues = [f"ven_{i:03d}" for i in range(max(1, sessions // 50))]
    world.venues = {v: district_id for v in venues}
    start = datetime(2026, 9, 7, 1, tzinfo=UTC)
    world.sessions = [Session(f"ses_{i:05d}", rng.choice(venues), rng.choice(CATEGORIES),
                              start + timedelta(days=rng.randrange(120), hours=rng.randrange(8)),
                              rng.choice((60, 120, 200)))
                      for i in range(sessions)]
    for i in range(claims):
        school = rng.choice(world.schools)
        grade = rng.randrange(1, 7)
        n = rng.randrange(20, 41)
        claim = Claim(f"clm_{i:06d}", school.school_id, rng.choice(world.sessions).session_id,
                      [{"label": f"{grade}-{i % 9}", "grade": grade, "students": n,
                        "teachers": 2}])
        roll = rng.random()
        if roll < 0.05:
            claim.cancelled = True
        elif roll < 0.75:
            came = 0 if roll > 0.72 else n - rng.randrange(0, 3)
            claim.attended = came
            if roll < 0.6:
                base = rng.randrange(0, max(1, pupils_per_school - n))
                claim.pupil_ids = [f"{school.school_id}-p{base + k:05d}" for k in range(came)]
        world.claims.append(claim)
    for i in range(claims // 20):
        school = rng.choice(world.schools)
        world.visits.append(Visit(f"vis_{i:05d}", school.school_id, rng.choice(venues),
                                  start + timedelta(days=rng.randrange(120)), 40,
                                  ("booked", "delivered", "confirmed")))
    for claim in world.claims[: claims // 5]:
        if claim.attended:
            world.answers.append(Answer(f"ans_{claim.claim_id}", claim.claim_id, None,
                                        claim.school_id, {"content": rng.randrange(1, 6),
                                                          "organisation": rng.randrange(2, 6),
                                                          "safety": rng.randrange(3, 6)}))
    return world
