"""Families and teacher training, counted apart from school trips: bookings confirmed,
cancelled and checked in (admissions' events) give the same figures in any order, once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import services.contracts  # noqa: F401 - registers the event types
from services.kit.envelope import new_envelope
from services.kit.registry import validate_envelope
from services.monitoring.simulation import School, Session, World, _session_data
from services.monitoring.term_facts import Filter, Scope

D = "dst_east"
T = "2026-autumn"
MON = datetime(2026, 9, 7, 1, tzinfo=UTC)  # a Monday, 09:00 in Shanghai
WEEK1, WEEK2 = "2026-09-07", "2026-09-14"


def directory() -> list[dict[str, Any]]:
    """A district: two schools, two venues, a family and a training session a week apart."""
    w = World(term=T)
    w.schools = [School("sch_a", D, 300), School("sch_b", D, 200)]
    w.venues = {"ven_a": D, "ven_b": D}
    out = w.envelopes()
    for sid, vid, audience, at in (("fam1", "ven_a", "family", MON),
                                   ("trn1", "ven_b", "teachers", MON + timedelta(days=7))):
        data = _session_data(Session(sid, vid, "science_museum", at, 40))
        out.append(new_envelope("venues.session_published", 1,
                                {**data, "audience": audience}, occurred_at=at))
    return out


def booking(kind: str, booking_id: str, session_id: str, venue_id: str, audience: str,
            adults: int, children: int, school_id: str | None = None,
            at: datetime = MON) -> dict[str, Any]:
    data: dict[str, Any] = {
        "booking_id": booking_id, "session_id": session_id, "venue_id": venue_id,
        "district_id": D, "audience": audience, "school_id": school_id, "adults": adults,
        "children": children, "people": adults + children}
    if kind == "booking_confirmed":
        data["fee_fen"] = 0
    elif kind == "booking_cancelled":
        data["reason"] = "guardian"
    else:
        data.update(checked_in_at=at.isoformat().replace("+00:00", "Z"), fee_fen=0,
                    method=None)
    return new_envelope(f"admissions.{kind}", 1, data, occurred_at=at)


def admission_events() -> list[dict[str, Any]]:
    fam = ("fam1", "ven_a", "family")
    trn = ("trn1", "ven_b", "teachers")
    later = MON + timedelta(days=7)
    return [
        booking("booking_confirmed", "bk1", *fam, 2, 1),
        booking("checked_in", "bk1", *fam, 2, 1),
        booking("booking_confirmed", "bk2", *fam, 1, 2),
        booking("checked_in", "bk2", *fam, 1, 2),
        booking("booking_confirmed", "bk3", *fam, 1, 1),  # booked, did not come
        booking("booking_confirmed", "bk4", *fam, 2, 0),
        booking("booking_cancelled", "bk4", *fam, 2, 0),
        booking("booking_confirmed", "tr1", *trn, 1, 0, "sch_a", later),
        booking("checked_in", "tr1", *trn, 1, 0, "sch_a", later),
        booking("booking_confirmed", "tr2", *trn, 1, 0, "sch_b", later),
    ]


FAMILY = {"bookings": 3, "people_booked": 8, "adults_booked": 4, "children_booked": 4,
          "cancelled": 1, "checked_in": 2, "people_checked_in": 6, "adults_checked_in": 3,
          "children_checked_in": 3, "check_in_rate": round(2 / 3, 4)}
TRAINING = {"bookings": 2, "people_booked": 2, "adults_booked": 2, "children_booked": 0,
            "cancelled": 0, "checked_in": 1, "people_checked_in": 1, "adults_checked_in": 1,
            "children_checked_in": 0, "check_in_rate": 0.5}


def report_of(repos: Any, envelopes: list[dict[str, Any]], scope: Scope | None = None,
              flt: Filter | None = None) -> dict[str, Any]:
    repo = repos()
    for envelope in envelopes:
        repo.consume(envelope)
    return repo.term_report(D, T, scope or Scope(), flt)


def test_simulated_events_are_shaped_as_admissions_publishes_them() -> None:
    for envelope in admission_events():
        validate_envelope(envelope)


def test_families_and_training_are_counted_apart_from_school_trips(repos) -> None:
    report = report_of(repos, directory() + admission_events())
    figures = report["admissions"]
    assert figures["family"] == FAMILY
    assert figures["training"] == TRAINING
    rows = {(r["audience"], r["venue_id"], r["week"]): r for r in figures["by_venue_week"]}
    assert set(rows) == {("family", "ven_a", WEEK1), ("training", "ven_b", WEEK2)}
    assert rows[("family", "ven_a", WEEK1)]["children_checked_in"] == 3
    assert rows[("family", "ven_a", WEEK1)]["name"] == "Venue ven_a"
    summary = report["summary"]  # school trips' figures are untouched by individuals
    assert (summary["participants"], summary["trips_confirmed"], summary["seats_confirmed"]
            ) == (0, 0, 0)


def test_replayed_duplicated_and_shuffled_events_give_the_same_figures(repos) -> None:
    envelopes = directory() + admission_events()
    expected = report_of(repos, envelopes)["admissions"]
    shuffled = envelopes + admission_events()[:4] + envelopes[-6:]
    random.Random(7).shuffle(shuffled)  # check-ins before their confirmations, sessions last
    assert report_of(repos, shuffled)["admissions"] == expected


def test_a_venue_sees_its_own_a_school_its_teachers_and_a_drill_down_narrows(repos) -> None:
    envelopes = directory() + admission_events()
    venue = report_of(repos, envelopes, Scope(venues=frozenset({"ven_a"})))["admissions"]
    assert venue["family"] == FAMILY and venue["training"]["bookings"] == 0
    school = report_of(repos, envelopes, Scope(schools=frozenset({"sch_a"})))["admissions"]
    assert (school["family"]["bookings"], school["training"]["people_checked_in"]) == (0, 1)
    week2 = report_of(repos, envelopes, flt=Filter(week=WEEK2))["admissions"]
    assert (week2["family"]["bookings"], week2["training"]["bookings"]) == (0, 2)
    graded = report_of(repos, envelopes, flt=Filter(grade=5))["admissions"]
    assert graded["family"]["bookings"] == graded["training"]["bookings"] == 0


def test_another_districts_bookings_are_not_counted(repos) -> None:
    other = booking("booking_confirmed", "bkx", "fam1", "ven_a", "family", 1, 1)
    other["data"]["district_id"] = "dst_west"
    report = report_of(repos, directory() + admission_events() + [other])
    assert report["admissions"]["family"] == FAMILY
