"""Attendance per pupil (#14.2): head counts or roster pupil ids, by the venue or the school."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.booking.attendance import record_attendance
from services.booking.tests.conftest import group, make_school, school_actor
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, ValidationFailed
from services.kit.outbox import pending


class FakeRosters:
    """`notifications.class_pupils(school_id, labels)`: pupil ids per class roster."""

    def __init__(self) -> None:
        self.rosters: dict[tuple[str, str], list[str]] = {}
        self.calls: list[tuple[str, list[str]]] = []

    def class_pupils(self, school_id: str, labels: list[str]) -> dict[str, list[str]]:
        self.calls.append((school_id, labels))
        return {label: self.rosters[(school_id, label)] for label in labels
                if (school_id, label) in self.rosters}


@pytest.fixture()
def rosters():
    return FakeRosters()


@pytest.fixture()
def trip(desk, repo, venues, rosters, frozen_clock):
    """A confirmed claim of two classes on a session that has just started."""
    session = venues.add_session(starts_in=timedelta(hours=1))
    school = make_school(repo)
    claim = desk.claims.create(school_actor(school), {
        "session_id": session["session_id"],
        "groups": [group("五年级(1)班", students=3), group("五年级(2)班", students=2)]})
    rosters.rosters[(school["_id"], "五年级(1)班")] = ["p1", "p2", "p3", "p4"]
    rosters.rosters[(school["_id"], "五年级(2)班")] = ["q1", "q2"]
    frozen_clock["now"] += timedelta(hours=1, minutes=5)
    return {"session": session, "school": school, "claim": claim}


def venue_staff(session):
    return Actor(sub="v-1", role="venue", org=session["venue_id"])


def attended_event(repo, claim_id):
    return [env for _, env in pending(repo.db.claims.find_one({"_id": claim_id}))
            if env["type"] == "booking.visit_attended"][-1]["data"]


def test_a_head_count_is_still_accepted_and_reported_as_a_count(repo, rosters, trip):
    claim, session = trip["claim"], trip["session"]
    done = record_attendance(repo, rosters, venue_staff(session), session["session_id"],
                             {"records": [{"claim_id": claim["_id"], "students": 4,
                                           "teachers": 2}]})
    assert done[0]["attendance"]["form"] == "count"
    assert done[0]["attendance"]["students"] == 4
    data = attended_event(repo, claim["_id"])
    assert (data["form"], data["students_attended"], data["groups"]) == ("count", 4, None)
    assert data["district_id"] == trip["school"]["district_id"]
    assert rosters.calls == []  # a count needs no roster


def test_the_venue_marks_who_came_against_the_rosters(repo, rosters, trip):
    claim, session = trip["claim"], trip["session"]
    done = record_attendance(repo, rosters, venue_staff(session), session["session_id"], {
        "records": [{"claim_id": claim["_id"], "teachers": 2, "groups": [
            {"label": "五年级(1)班", "pupil_ids": ["p1", "p3"]}]}]})
    attendance = done[0]["attendance"]
    assert (attendance["form"], attendance["students"], attendance["no_show"]) == (
        "pupils", 2, False)
    data = attended_event(repo, claim["_id"])
    assert data["students_attended"] == 2 and data["form"] == "pupils"
    assert data["groups"] == [
        {"label": "五年级(1)班", "students_booked": 3, "students_attended": 2,
         "pupil_ids": ["p1", "p3"]},
        {"label": "五年级(2)班", "students_booked": 2, "students_attended": 0,
         "pupil_ids": []}]
    assert rosters.calls == [(trip["school"]["_id"], ["五年级(1)班"])]


def test_an_unknown_pupil_is_422_naming_the_field_and_nothing_is_written(repo, rosters,
                                                                           trip):
    claim, session = trip["claim"], trip["session"]
    with pytest.raises(ValidationFailed) as refused:
        record_attendance(repo, rosters, venue_staff(session), session["session_id"], {
            "records": [{"claim_id": claim["_id"], "groups": [
                {"label": "五年级(2)班", "pupil_ids": ["q1", "p1"]}]}]})
    assert list(refused.value.errors) == ["records.0.groups.0.pupil_ids"]
    assert "p1" in refused.value.errors["records.0.groups.0.pupil_ids"][0]
    assert "attendance" not in repo.claim(claim["_id"])


def test_a_class_not_on_the_claim_or_too_many_pupils_is_422(repo, rosters, trip):
    claim, session = trip["claim"], trip["session"]
    with pytest.raises(ValidationFailed) as refused:
        record_attendance(repo, rosters, venue_staff(session), session["session_id"], {
            "records": [{"claim_id": claim["_id"], "groups": [
                {"label": "六年级(1)班", "pupil_ids": ["x"]},
                {"label": "五年级(2)班", "pupil_ids": ["q1", "q2", "q3"]}]}]})
    assert set(refused.value.errors) == {"records.0.groups.0.label",
                                         "records.0.groups.1.pupil_ids"}


def test_the_school_records_its_own_trip_and_not_another_schools(desk, repo, venues,
                                                                  rosters, trip):
    claim, session, school = trip["claim"], trip["session"], trip["school"]
    done = record_attendance(repo, rosters, school_actor(school), session["session_id"], {
        "records": [{"claim_id": claim["_id"], "groups": [
            {"label": "五年级(2)班", "pupil_ids": ["q2"]}]}]})
    assert done[0]["attendance"]["recorded_by"] == school_actor(school).name
    assert attended_event(repo, claim["_id"])["recorded_by_role"] == "school"
    other = school_actor(make_school(repo, "别校"))
    with pytest.raises(Forbidden):
        record_attendance(repo, rosters, other, session["session_id"],
                          {"records": [{"claim_id": claim["_id"], "students": 1}]})
    with pytest.raises(Forbidden):
        record_attendance(repo, rosters, Actor(sub="f", role="finance", org="dis_pudong"),
                          session["session_id"],
                          {"records": [{"claim_id": claim["_id"], "students": 1}]})


def test_both_forms_at_once_or_neither_is_422(repo, rosters, trip):
    claim, session = trip["claim"], trip["session"]
    for record in ({"claim_id": claim["_id"]},
                   {"claim_id": claim["_id"], "students": 1,
                    "groups": [{"label": "五年级(2)班", "pupil_ids": ["q1"]}]}):
        with pytest.raises(ValidationFailed) as refused:
            record_attendance(repo, rosters, venue_staff(session), session["session_id"],
                              {"records": [record]})
        assert "records" in str(refused.value.errors)


def test_a_pupil_twice_in_one_class_is_422(repo, rosters, trip):
    claim, session = trip["claim"], trip["session"]
    with pytest.raises(ValidationFailed) as refused:
        record_attendance(repo, rosters, venue_staff(session), session["session_id"], {
            "records": [{"claim_id": claim["_id"], "groups": [
                {"label": "五年级(2)班", "pupil_ids": ["q1", "q1"]}]}]})
    assert "pupil_ids" in str(refused.value.errors)


def test_not_before_the_session_started(desk, repo, venues, rosters, frozen_clock):
    session = venues.add_session(starts_in=timedelta(hours=3))
    school = make_school(repo)
    claim = desk.claims.create(school_actor(school), {"session_id": session["session_id"],
                                                      "groups": [group("一班")]})
    with pytest.raises(Conflict):
        record_attendance(repo, rosters, school_actor(school), session["session_id"],
                          {"records": [{"claim_id": claim["_id"], "students": 3}]})
