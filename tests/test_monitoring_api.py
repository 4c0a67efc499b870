"""District monitoring on the running stack: figures from events, scoped per role, downloads.

The unit tests (services/monitoring/tests) prove the figures exact, order-tolerant and
rebuildable; this file proves the wiring: events reach the projection, the gateway routes
answer each role only its own rows, the files download, and allocation's RPC answers.
"""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import datetime, timedelta

import pymongo
import pytest

from services.contracts.terms import SHANGHAI, term_of
from services.kit.config import Settings
from services.monitoring import operations
from tests.booking_helpers import group, iso
from tests.support import problem, wait_for

pytestmark = pytest.mark.stack


def registered(api, path, body):
    """Register once booking/venues know the district (identity's event); 422 until then."""
    def attempt():
        r = api.admin.post(path, json=body)
        assert r.status_code in (201, 422), r.text
        return r.json() if r.status_code == 201 else None
    return wait_for(attempt, message=f"{path} knows the district")


@pytest.fixture(scope="module")
def term_world(stack, api):
    """A district with a rural school and a city school (named =cmd, a formula), a venue and
    a confirmed tutor visit for the rural school; a second district with its own school."""
    district = api.register_district()
    did = district["district_id"]
    rural = registered(api, "/v1/schools", {
        "name": f"乡村小学-{uuid.uuid4().hex[:4]}", "district_id": did, "rural": True,
        "location": {"lat": 31.2, "lon": 121.5}, "students": 300})
    city = registered(api, "/v1/schools", {
        "name": "=cmd|' /C calc'!A0", "district_id": did,
        "location": {"lat": 31.2, "lon": 121.5}, "students": 900})
    venue = registered(api, "/v1/venues", {
        "name": f"场馆-{uuid.uuid4().hex[:4]}", "kind": "science_museum", "district_id": did,
        "location": {"lat": 31.2, "lon": 121.5}, "address": "世纪大道1号"})
    other = api.register_district()
    elsewhere = registered(api, "/v1/schools", {
        "name": "别区小学", "district_id": other["district_id"],
        "location": {"lat": 31.2, "lon": 121.5}, "students": 100})
    staff = api.as_("venue", venue["venue_id"])
    tutor = staff.post(f"/v1/venues/{venue['venue_id']}/tutors", json={
        "name": "王老师", "level": "senior", "subjects": ["astronomy"],
        "certified_until": "2030-12-31"})
    assert tutor.status_code == 201, tutor.text
    today = datetime.now(SHANGHAI).date()
    school_staff = api.as_("school", rural["school_id"])
    visit = school_staff.post("/v1/tutor-visits", json={
        "tutor_id": tutor.json()["tutor_id"], "date": today.isoformat(), "hours": 2,
        "students": 40})
    assert visit.status_code == 201, visit.text
    visit_id = visit.json()["visit_id"]
    assert staff.post(f"/v1/tutor-visits/{visit_id}/deliver").status_code == 200
    assert school_staff.post(f"/v1/tutor-visits/{visit_id}/confirm").status_code == 200
    session = staff.post(f"/v1/venues/{venue['venue_id']}/sessions", json={
        "title": "星空探秘", "category": "science", "audience": "students", "grades": [1, 6],
        "starts_at": iso(timedelta(days=3)), "ends_at": iso(timedelta(days=3, hours=2)),
        "capacity": 100, "price_fen": 0})
    assert session.status_code == 201, session.text
    claim = api.as_("school", city["school_id"]).post("/v1/claims", json={
        "session_id": session.json()["session_id"], "groups": [group("五年级(2)班")]})
    assert claim.status_code in (200, 201, 202), claim.text
    term = term_of(today)
    base = f"/v1/monitoring/districts/{did}/terms/{term}"
    finance = api.as_("finance", did)
    wait_for(lambda: (lambda r: r.status_code == 200
                      and r.json()["summary"]["tutor_visits_delivered"] == 1
                      and r.json()["summary"]["trips_confirmed"] == 1
                      and r.json()["summary"]["schools"] == 2)(finance.get(base)),
             message="monitoring folded the district's events")
    return {"district": did, "other": other["district_id"], "term": term, "base": base,
            "rural": rural, "city": city, "venue": venue, "elsewhere": elsewhere,
            "finance": finance}


def test_the_district_sees_its_figures_from_the_events(api, term_world):
    w = term_world
    body = w["finance"].get(w["base"]).json()
    summary = body["summary"]
    assert (summary["enrolment"], summary["schools_covered"]) == (1200, 1)
    assert summary["coverage_rate"] == 0.5
    assert summary["headcount_pupil_visits"] == 40  # a tutor visit counts by head
    assert body["priority"]["enrolment_share"] == 0.25
    assert (body["priority"]["seat_share"], body["priority"]["received_share"]) == (0.0, False)
    schools = w["finance"].get(f"{w['base']}/schools").json()
    assert {r["school_id"] for r in schools["items"]} == {w["rural"]["school_id"],
                                                          w["city"]["school_id"]}
    assert schools["totals"]["enrolment"] == 1200
    trend = w["finance"].get(f"{w['base']}/trend").json()
    assert sum(r["tutor_visits"] for r in trend["items"]) == 1


def test_each_role_sees_only_its_own_rows(api, term_world):
    w = term_world
    school = api.as_("school", w["rural"]["school_id"]).get(f"{w['base']}/schools")
    assert [r["school_id"] for r in school.json()["items"]] == [w["rural"]["school_id"]]
    venue = api.as_("venue", w["venue"]["venue_id"]).get(f"{w['base']}/venues")
    assert [r["venue_id"] for r in venue.json()["items"]] == [w["venue"]["venue_id"]]
    problem(api.as_("finance", w["other"]).get(w["base"]), 404)
    problem(api.as_("school", w["elsewhere"]["school_id"]).get(w["base"]), 404)
    district_staff = api.as_("district", w["district"])
    assert district_staff.get(w["base"]).json()["summary"]["schools"] == 2
    assert api.admin.get(w["base"]).status_code == 200
    problem(w["finance"].get(w["base"], params={"grade": "13"}), 422)


def test_downloads_are_guarded_and_the_workbook_holds_every_view(term_world):
    w = term_world
    csv = w["finance"].get(f"{w['base']}/csv", params={"view": "schools"})
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert "'=cmd|" in csv.content.decode("utf-8-sig")  # the formula guard
    xlsx = w["finance"].get(f"{w['base']}/xlsx")
    assert xlsx.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(xlsx.content)).read("xl/workbook.xml").decode()
    for sheet in ("Summary", "Schools", "Venues", "Weeks", "Definitions"):
        assert sheet in names


def test_allocation_asks_the_same_facts_and_a_rebuild_changes_nothing(rpc, settings_env,
                                                                     term_world):
    w = term_world
    rural = w["rural"]["school_id"]
    assert rpc.call("monitoring", "school_history", [rural], w["term"]) == {
        rural: {"confirmed_visits": 0, "no_shows": 0}}
    before = w["finance"].get(f"{w['base']}/schools").json()["items"]
    settings = Settings.from_env(settings_env)
    assert operations.rebuild(settings) > 0
    assert w["finance"].get(f"{w['base']}/schools").json()["items"] == before
    wait_for(lambda: operations.check(settings, rpc) == [],
             message="monitoring's counts agree with booking's")


def test_each_event_is_archived_once_without_a_ledger_and_folded(settings_env, term_world):
    settings = Settings.from_env(settings_env)
    client = pymongo.MongoClient(settings_env["MONGO_URL"], tz_aware=True)
    try:
        db = client[settings.database("monitoring")]
        assert db.archive.count_documents({}) > 0
        assert db.applied_events.count_documents({}) == 0  # the archive insert is the ledger
        wait_for(lambda: db.archive.count_documents({"folded_at": {"$lte": 0}}) == 0,
                 message="the service folded every archived event")
    finally:
        client.close()
