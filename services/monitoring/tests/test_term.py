"""A simulated term: the projection's figures equal the ones computed here from the inputs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from services.kit.actor import Actor
from services.kit.errors import Forbidden, NotFound
from services.monitoring.access import scope_for
from services.monitoring.simulation import (
    Answer,
    Claim,
    School,
    Session,
    Visit,
    World,
)
from services.monitoring.term_facts import Filter, Scope

D = "dst_east"
T = "2026-autumn"
MON = datetime(2026, 9, 7, 1, tzinfo=UTC)  # a Monday, 09:00 in Shanghai


def g(grade: int, students: int, teachers: int = 2, label: str | None = None) -> dict:
    return {"label": label or f"{grade}-1", "grade": grade, "students": students,
            "teachers": teachers}


def pupils(school: str, first: int, n: int) -> list[str]:
    return [f"{school}-{k}" for k in range(first, first + n)]


def world() -> World:
    w = World(term=T)
    w.schools = [School("sch_rural", D, 400, rural=True, name="=HYPERLINK(\"x\")"),
                 School("sch_weak", D, 300, under_resourced=True),
                 School("sch_city", D, 1000),
                 School("sch_idle", D, 500),
                 School("sch_name-old", D, 200),  # registered before district ids: name only
                 School("sch_other", "dst_west", 900)]
    w.venues = {"ven_a": D, "ven_b": D, "ven_w": "dst_west"}
    w.sessions = [Session("ses_sci", "ven_a", "science", MON, 100),
                  Session("ses_art", "ven_a", "arts", MON + timedelta(days=8), 80),
                  Session("ses_spo", "ven_b", "sports", MON + timedelta(days=15), 60),
                  Session("ses_lab", "ven_b", "labour", MON + timedelta(days=16), 50,
                          cancelled=True),
                  Session("ses_w", "ven_w", "science", MON, 90)]
    w.claims = [
        # per pupil, and the same pupils twice: counted once
        Claim("c1", "sch_rural", "ses_sci", [g(3, 30)], attended=28,
              pupil_ids=pupils("sch_rural", 0, 28)),
        Claim("c2", "sch_rural", "ses_art", [g(3, 30)], attended=30,
              pupil_ids=pupils("sch_rural", 10, 30), waitlisted_first=True),
        # head count only, and corrected once (the later record counts)
        Claim("c3", "sch_city", "ses_sci", [g(5, 40), g(6, 35, label="6-1")], attended=70,
              corrected_from=60),
        # no-show
        Claim("c4", "sch_city", "ses_spo", [g(4, 25)], attended=0, pupil_ids=[]),
        # confirmed, attendance not recorded yet
        Claim("c5", "sch_weak", "ses_spo", [g(2, 20)]),
        # cancelled by the school: not a trip
        Claim("c6", "sch_weak", "ses_art", [g(2, 20)], cancelled=True),
        # on a cancelled session, cancelled by the venue
        Claim("c7", "sch_city", "ses_lab", [g(5, 30)], cancelled=True),
        # the old-style school, per pupil
        Claim("c8", "sch_name-old", "ses_art", [g(1, 15, 1)], attended=15,
              pupil_ids=pupils("sch_name-old", 0, 15)),
        # another district: never in this district's figures
        Claim("c9", "sch_other", "ses_w", [g(3, 40)], attended=40,
              pupil_ids=pupils("sch_other", 0, 40)),
    ]
    w.visits = [Visit("v1", "sch_weak", "ven_a", MON + timedelta(days=2), 45,
                      ("booked", "delivered", "confirmed"), paid_fen=20_000),
                # paid, then cancelled (funding claws it back): its subsidy does not count
                Visit("v2", "sch_idle", "ven_a", MON + timedelta(days=3), 50,
                      ("booked", "delivered", "confirmed", "cancelled"), paid_fen=18_000),
                Visit("v3", "sch_city", "ven_b", MON + timedelta(days=9), 30, ("booked",)),
                Visit("v4", "sch_city", "ven_b", MON + timedelta(days=10), 25,
                      ("booked", "delivered"))]
    w.answers = [Answer("a1", "c1", None, "sch_rural", {"content": 5, "organisation": 4,
                                                        "safety": 5}),
                 Answer("a2", "c1", None, "sch_rural", {"content": 3, "organisation": 2,
                                                        "safety": 4},
                        earlier={"content": 5, "organisation": 5, "safety": 5}),
                 Answer("a3", "c3", None, "sch_city", {"content": 4, "organisation": 4,
                                                       "safety": 1}, respondent="teacher"),
                 Answer("a4", None, "v1", "sch_weak", {"content": 5, "organisation": 5,
                                                       "safety": 5}),
                 Answer("a5", "c9", None, "sch_other", {"content": 1, "organisation": 1,
                                                        "safety": 1})]
    return w


def expected(w: World) -> dict:
    """The figures, computed plainly from the world (not from events)."""
    schools = [s for s in w.schools if s.district_id == D]
    ids = {s.school_id for s in schools}
    enrolment = sum(s.students for s in schools)
    trips = [c for c in w.claims if c.school_id in ids and not c.cancelled]
    recorded = [c for c in trips if c.attended is not None]
    attended = [c for c in recorded if c.attended > 0]
    visits = [v for v in w.visits if v.school_id in ids
              and v.statuses[-1] in ("delivered", "confirmed")]
    named = {p for c in attended if c.pupil_ids is not None for p in c.pupil_ids}
    head = (sum(c.attended for c in attended if c.pupil_ids is None)
            + sum(v.students for v in visits))
    covered = {c.school_id for c in attended} | {v.school_id for v in visits}
    prio = {s.school_id for s in schools if s.rural or s.under_resourced}
    seats = sum(c.students for c in trips)
    prio_seats = sum(c.students for c in trips if c.school_id in prio)
    ratings = [r for a in w.answers if a.school_id in ids for r in a.ratings.values()]
    guardians = sum(1 for a in w.answers if a.school_id in ids and a.respondent == "guardian")
    came = sum(c.attended for c in attended) + sum(v.students for v in visits
                                                    if v.statuses[-1] == "confirmed")
    paid = [v for v in visits if v.paid_fen is not None]
    kinds: dict[str, set[str]] = {}
    for c in attended:
        kinds.setdefault(c.school_id, set()).add(w.session(c.session_id).category)
    for v in visits:
        kinds.setdefault(v.school_id, set()).add("tutor_visit")
    return {
        "schools": len(schools), "enrolment": enrolment, "participants": len(named),
        "participation_rate": round(len(named) / enrolment, 4),
        "headcount_pupil_visits": head,
        "schools_covered": len(covered), "coverage_rate": round(len(covered) / len(schools), 4),
        "trips_confirmed": len(trips), "trips_recorded": len(recorded),
        "trips_attended": len(attended), "no_shows": sum(1 for c in recorded if c.attended == 0),
        "attendance_rate": round(sum(c.attended for c in recorded)
                                 / sum(c.students for c in recorded), 4),
        "no_show_rate": round(sum(1 for c in recorded if c.attended == 0) / len(recorded), 4),
        "tutor_visits_delivered": len(visits),
        "satisfaction_rate": round(sum(1 for r in ratings if r >= 4) / len(ratings), 4),
        "satisfaction_mean": round(sum(ratings) / len(ratings), 3),
        "response_rate": round(guardians / came, 4),
        "variety_mean": round(sum(len(k) for k in kinds.values()) / len(schools), 3),
        "tutor_visits_paid": len(paid),
        "subsidy_paid_fen": sum(v.paid_fen for v in paid),
        "subsidy_per_pupil_served_fen": round(sum(v.paid_fen for v in paid)
                                              / sum(v.students for v in paid)),
        "_seat_share": round(prio_seats / seats, 4),
        "_enrolment_share": round(sum(s.students for s in schools if s.school_id in prio)
                                  / enrolment, 4),
        "_kinds": kinds,
    }


def fold(repo, envelopes) -> None:
    for envelope in envelopes:
        repo.consume(envelope)


def figures_of(repo, scope: Scope | None = None, flt: Filter | None = None) -> dict:
    report = repo.term_report(D, T, scope or Scope(), flt)
    return {k: v for k, v in report.items() if k != "computed_at"}


@pytest.fixture()
def term(repos):
    w = world()
    envelopes = w.envelopes()
    repo = repos()
    fold(repo, envelopes)
    return w, envelopes, repo


def test_a_simulated_term_yields_exactly_the_figures_computed_from_its_inputs(term):
    w, _, repo = term
    want = expected(w)
    got = figures_of(repo)
    summary = got["summary"]
    for key, value in want.items():
        if not key.startswith("_"):
            assert summary[key] == value, key
    assert got["priority"]["seat_share"] == want["_seat_share"]
    assert got["priority"]["enrolment_share"] == want["_enrolment_share"]
    assert got["priority"]["received_share"] == (want["_seat_share"] >= want["_enrolment_share"])
    rows = {r["school_id"]: r for r in got["schools"]}
    assert set(rows) == {"sch_rural", "sch_weak", "sch_city", "sch_idle", "sch_name-old"}
    assert rows["sch_rural"]["participants"] == 40  # pupils 0..39: two trips, overlapping
    assert rows["sch_idle"]["covered"] is False  # its only visit was cancelled
    for sid, kinds in want["_kinds"].items():
        assert set(rows[sid]["kinds"]) == kinds
    shares = {c["category"]: c["share_of_schools"] for c in got["categories"]}
    assert shares["science"] == round(2 / 5, 4)  # rural and city went to the science trip
    assert shares["tutor_visit"] == round(2 / 5, 4)  # weak's confirmed visit; city's v4
    assert shares["labour"] == 0.0
    # the distribution counts a changed answer once, as changed
    assert got["satisfaction"]["distribution"] == {"1": 1, "2": 1, "3": 1, "4": 4, "5": 5}


def test_venues_show_seats_offered_claimed_and_attended(term):
    _, _, repo = term
    venues = {r["venue_id"]: r for r in figures_of(repo)["venues"]}
    assert set(venues) == {"ven_a", "ven_b"}  # the district's venues
    assert venues["ven_a"]["seats_offered"] == 180
    # c1 (30+2), c2 (30+2), c3 (75+4), c8 (15+1); c6 cancelled
    assert venues["ven_a"]["seats_claimed"] == 32 + 32 + 79 + 16
    assert venues["ven_a"]["seats_attended"] == (28 + 2) + (30 + 2) + (70 + 4) + (15 + 1)
    assert venues["ven_b"]["seats_offered"] == 60  # the cancelled session offers nothing


def test_the_trend_counts_pupils_once_in_the_week_they_first_came(term):
    _, _, repo = term
    weeks = {r["week"]: r for r in figures_of(repo)["trend"]}
    assert weeks["2026-09-07"]["new_participants"] == 28
    assert weeks["2026-09-14"]["new_participants"] == 12 + 15  # c2's new pupils, and c8
    assert weeks["2026-09-14"]["participants_to_date"] == 55


def test_a_drill_down_narrows_to_one_category_grade_or_week(term):
    _, _, repo = term
    science = figures_of(repo, flt=Filter(category="science"))["summary"]
    assert science["trips_confirmed"] == 2 and science["tutor_visits_delivered"] == 0
    grade6 = figures_of(repo, flt=Filter(grade=6))["summary"]
    assert grade6["trips_confirmed"] == 1
    arts = {r["venue_id"]: r for r in figures_of(repo, flt=Filter(category="arts"))["venues"]}
    assert (arts["ven_a"]["seats_offered"], arts["ven_a"]["claims"]) == (80, 2)  # c2, c8
    visits = figures_of(repo, flt=Filter(category="tutor_visit"))["summary"]
    assert visits["tutor_visits_delivered"] == 2 and visits["trips_confirmed"] == 0


def test_a_rebuild_from_the_archive_yields_identical_figures(term):
    _, _, repo = term
    before = figures_of(repo)
    assert repo.rebuild() > 0
    assert repo.db.reports.count_documents({}) == 0
    assert figures_of(repo) == before


def test_replayed_duplicated_and_shuffled_events_change_nothing(term, repos):
    _, envelopes, repo = term
    want = figures_of(repo)
    again = repos()
    shuffled = envelopes + envelopes[::3]  # every third one delivered twice
    random.Random(7).shuffle(shuffled)
    fold(again, shuffled)
    assert figures_of(again) == want
    fold(repo, envelopes[::-1])  # the whole history replayed, newest first
    assert figures_of(repo) == want


def test_a_cancel_before_its_confirm_and_attendance_before_its_claim(repos):
    w = world()
    envelopes = w.envelopes()
    by_type = sorted(envelopes, key=lambda e: (e["type"] != "booking.claim_cancelled",
                                                e["type"] != "booking.visit_attended"))
    repo = repos()
    fold(repo, by_type)
    in_order = repos()
    fold(in_order, envelopes)
    assert figures_of(repo) == figures_of(in_order)


def test_school_history_gives_allocation_the_same_facts(term):
    w, _, repo = term
    history = repo.school_history(["sch_city", "sch_weak", "sch_idle"], T)
    assert history == {"sch_city": {"confirmed_visits": 2, "no_shows": 1},
                       "sch_weak": {"confirmed_visits": 1, "no_shows": 0},
                       "sch_idle": {"confirmed_visits": 0, "no_shows": 0}}
    assert repo.school_history(["sch_city"], "2027-spring") == {
        "sch_city": {"confirmed_visits": 0, "no_shows": 0}}


def test_each_role_sees_only_its_own_figures(term):
    _, _, repo = term
    school = repo.term_report(D, T, scope_for(Actor("u", "school", "sch_rural"), D))
    assert [r["school_id"] for r in school["schools"]] == ["sch_rural"]
    assert school["summary"]["participants"] == 40
    assert school["summary"]["enrolment"] == 400
    venue = repo.term_report(D, T, scope_for(Actor("u", "venue", "ven_b"), D))
    assert [r["venue_id"] for r in venue["venues"]] == ["ven_b"]
    assert {r["school_id"] for r in venue["schools"]} == {"sch_city", "sch_weak"}
    assert venue["summary"]["trips_confirmed"] == 2  # c4 and c5 at ven_b; v4 is ven_b's too
    with pytest.raises(NotFound):
        scope_for(Actor("u", "district", "dst_west"), D)
    with pytest.raises(NotFound):
        scope_for(Actor("u", "finance", "dst_west"), D)
    assert scope_for(Actor("u", "finance", D), D).whole
    with pytest.raises(NotFound):  # a school of another district
        repo.term_report(D, T, scope_for(Actor("u", "school", "sch_other"), D))


def test_the_cache_serves_a_report_until_an_event_is_folded(term):
    w, envelopes, repo = term
    repo.stale_s, repo.fold_margin_s = 0, 0
    first = repo.term_report(D, T, Scope())
    assert repo.term_report(D, T, Scope())["computed_at"] == first["computed_at"]
    repo.consume(World(term=T, clock=w.clock)._env("booking.school_registered", {
        "school_id": "sch_new", "name": "New", "district": D, "district_id": D,
        "location": {"lat": 1.0, "lon": 1.0}, "rural": False, "under_resourced": False,
        "students": 100}))
    assert repo.term_report(D, T, Scope())["summary"]["schools"] == 6


def test_an_unknown_role_is_refused():
    with pytest.raises(Forbidden):
        scope_for(Actor("u", "school", None), D)


def test_the_simulated_events_are_shaped_as_the_producers_publish_them():
    import services.contracts  # noqa: F401 - registers the event types
    from services.kit.registry import validate_envelope

    envelopes = world().envelopes()
    assert {e["type"] for e in envelopes} >= {
        "booking.visit_attended", "notifications.survey_changed", "notifications.survey_opened"}
    for envelope in envelopes:
        validate_envelope(envelope)


def test_the_refresh_recomputes_a_report_read_lately_once_its_facts_changed(term):
    w, _, repo = term
    repo.stale_s, repo.fold_margin_s = 3600, 0  # reads would serve the cached report
    assert repo.term_report(D, T, Scope())["summary"]["schools"] == 5
    repo.consume(World(term=T, clock=w.clock)._env("booking.school_registered", {
        "school_id": "sch_late", "name": "Late", "district": D, "district_id": D,
        "location": {"lat": 1.0, "lon": 1.0}, "rural": True, "under_resourced": False,
        "students": 100}))
    assert repo.term_report(D, T, Scope())["summary"]["schools"] == 5  # still the cached one
    assert repo.refresh() == 1
    assert repo.term_report(D, T, Scope())["summary"]["schools"] == 6
    assert repo.refresh() == 0  # nothing changed since


def test_subsidy_paid_per_pupil_served_counts_paid_visits_in_any_order(repos):
    w = World(term=T)
    w.schools = [School("sch_a", D, 300), School("sch_b", D, 200, rural=True)]
    w.visits = [Visit("v1", "sch_a", "ven_a", MON, 40, ("booked", "delivered", "confirmed"),
                      paid_fen=20_000),
                Visit("v2", "sch_a", "ven_a", MON, 25, ("booked", "delivered", "confirmed"),
                      paid_fen=10_001),
                Visit("v3", "sch_b", "ven_a", MON, 30, ("booked", "delivered", "confirmed")),
                Visit("v4", "sch_b", "ven_a", MON, 20,
                      ("booked", "delivered", "confirmed", "cancelled"), paid_fen=9_000)]
    envelopes = w.envelopes()
    paid_first = sorted(envelopes, key=lambda e: e["type"] != "funding.subsidy_paid")
    repo = repos()
    fold(repo, paid_first + paid_first[:3])  # payments before their visits, some twice
    report = figures_of(repo)
    summary = report["summary"]
    # v1 and v2 paid, 65 pupils served by them; v3 not paid yet; v4 cancelled after payment
    assert (summary["tutor_visits_paid"], summary["subsidy_paid_fen"]) == (2, 30_001)
    assert summary["subsidy_per_pupil_served_fen"] == round(30_001 / 65) == 462
    rows = {r["school_id"]: r for r in report["schools"]}
    assert rows["sch_a"]["subsidy_paid_fen"] == 30_001
    assert (rows["sch_b"]["subsidy_paid_fen"], rows["sch_b"]["subsidy_per_pupil_served_fen"]
            ) == (0, None)
    in_order = repos()
    fold(in_order, envelopes)
    assert figures_of(in_order) == report
