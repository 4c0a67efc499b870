"""Districts are organisations (#12.1) and attendance per pupil (#14.2), on the running stack.

Schools and venues belong to a district by id; finance and district staff see their own
district only (booking and funding); `kepu migrate districts` moves names to ids, twice
without harm; a venue or the school marks who came against the class rosters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from services.contracts.terms import SHANGHAI
from tests.booking_helpers import School, Venue, group, iso
from tests.support import problem, wait_for

pytestmark = pytest.mark.stack


def known_everywhere(api, district_id):
    """Register a school and a venue in the district once booking and venues have heard
    of it (identity's event); until then registration answers 422 on `district_id`."""
    def attempt(path, body):
        r = api.admin.post(path, json=body)
        assert r.status_code in (201, 422), r.text
        return r.json() if r.status_code == 201 else None

    school = wait_for(lambda: attempt("/v1/schools", {
        "name": f"学校-{uuid.uuid4().hex[:6]}", "district_id": district_id,
        "location": {"lat": 31.2, "lon": 121.5}, "students": 500}),
        message=f"booking knows {district_id}")
    venue = wait_for(lambda: attempt("/v1/venues", {
        "name": f"场馆-{uuid.uuid4().hex[:6]}", "kind": "science_museum",
        "district_id": district_id, "location": {"lat": 31.2, "lon": 121.5},
        "address": "世纪大道1号"}), message=f"venues knows {district_id}")
    return school, venue


@pytest.fixture(scope="module")
def districts(stack, api):
    """Two districts, each with a school, a venue (with a tutor) and a confirmed visit."""
    out = {}
    today = datetime.now(SHANGHAI).date().isoformat()
    for key in ("a", "b"):
        district = api.register_district()
        school, venue = known_everywhere(api, district["district_id"])
        venue_staff = api.as_("venue", venue["venue_id"])
        tutor = venue_staff.post(f"/v1/venues/{venue['venue_id']}/tutors", json={
            "name": "王老师", "level": "senior", "subjects": ["astronomy"],
            "certified_until": "2030-12-31"})
        assert tutor.status_code == 201, tutor.text
        school_staff = api.as_("school", school["school_id"])
        visit = school_staff.post("/v1/tutor-visits", json={
            "tutor_id": tutor.json()["tutor_id"], "date": today, "hours": 2, "students": 40})
        assert visit.status_code == 201, visit.text
        visit_id = visit.json()["visit_id"]
        assert venue_staff.post(f"/v1/tutor-visits/{visit_id}/deliver").status_code == 200
        assert school_staff.post(f"/v1/tutor-visits/{visit_id}/confirm").status_code == 200
        out[key] = {"district": district, "school": school, "venue": venue,
                    "visit_id": visit_id, "id": district["district_id"]}
    return out


def test_registration_names_the_district_and_refuses_an_unknown_one(api, districts):
    a = districts["a"]
    assert a["school"]["district_id"] == a["id"]
    assert a["school"]["district"] == a["district"]["name"]
    assert a["venue"]["district_id"] == a["id"]
    shown = api.admin.get(f"/v1/schools/{a['school']['school_id']}").json()
    assert (shown["district_id"], shown["district"]) == (a["id"], a["district"]["name"])
    body = problem(api.admin.post("/v1/schools", json={
        "name": "无区小学", "district_id": "dis_nowhere", "location": {"lat": 31, "lon": 121},
        "students": 10}), 422)
    assert "district_id" in body["errors"]
    body = problem(api.admin.post("/v1/venues", json={
        "name": "无区场馆", "kind": "other", "location": {"lat": 31, "lon": 121},
        "address": "x"}), 422)
    assert "district_id" in body["errors"]


def test_finance_of_one_district_sees_nothing_of_another(api, districts):
    a, b = districts["a"], districts["b"]
    finance_a = api.as_("finance", a["id"])
    listed = finance_a.get("/v1/schools").json()["items"]
    assert [s["school_id"] for s in listed] == [a["school"]["school_id"]]
    problem(finance_a.get(f"/v1/schools/{b['school']['school_id']}"), 404)
    visits = finance_a.get("/v1/tutor-visits").json()["items"]
    assert [v["visit_id"] for v in visits] == [a["visit_id"]]
    assert visits[0]["district_id"] == a["id"]
    problem(finance_a.get(f"/v1/tutor-visits/{b['visit_id']}"), 404)

    def accrued(finance, visit_id):
        items = finance.get("/v1/funding/accruals").json().get("items", [])
        return [i for i in items if i["visit_id"] == visit_id]

    mine = wait_for(lambda: accrued(finance_a, a["visit_id"]), message="a's accrual")
    assert mine[0]["district"] == a["id"]
    assert accrued(finance_a, b["visit_id"]) == []
    problem(finance_a.get(f"/v1/funding/accruals/{b['visit_id']}"), 404)
    finance_b = api.as_("finance", b["id"])
    wait_for(lambda: accrued(finance_b, b["visit_id"]), message="b's accrual")


def test_district_staff_read_their_districts_schools_venues_and_visits_only(api, districts):
    a, b = districts["a"], districts["b"]
    supervisor = api.as_("district", a["id"])
    assert supervisor.get(f"/v1/schools/{a['school']['school_id']}").status_code == 200
    problem(supervisor.get(f"/v1/schools/{b['school']['school_id']}"), 404)
    assert supervisor.get(f"/v1/venues/{a['venue']['venue_id']}").status_code == 200
    listed = supervisor.get("/v1/tutor-visits").json()["items"]
    assert [v["visit_id"] for v in listed] == [a["visit_id"]]
    problem(supervisor.post(f"/v1/tutor-visits/{a['visit_id']}/confirm"), 403)
    problem(supervisor.post("/v1/claims", json={"session_id": "x", "groups": []}), 403)
    problem(supervisor.get("/v1/funding/accruals"), 403)


def migrate(settings_env):
    """`kepu migrate districts`, as an operator runs it."""
    done = subprocess.run([sys.executable, "-m", "services.kit.cli", "migrate", "districts"],
                          env={**os.environ, **settings_env}, capture_output=True, text=True,
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_kepu_migrate_districts_moves_names_to_ids_and_a_rerun_changes_nothing(
        api, districts, settings_env):
    name = f"旧区-{uuid.uuid4().hex[:6]}"
    school = api.register_school(name="旧校", district=name)
    venue = api.register_venue(name="旧馆", district=name)
    assert school["district_id"] is None and venue["district_id"] is None
    first = migrate(settings_env)
    assert name in first["names"]
    district_id = first["districts"][name]
    assert api.admin.get(f"/v1/districts/{district_id}").json()["name"] == name
    moved = api.admin.get(f"/v1/schools/{school['school_id']}").json()
    assert (moved["district_id"], moved["district"]) == (district_id, name)
    assert api.admin.get(f"/v1/venues/{venue['venue_id']}").json()["district_id"] == \
        district_id
    again = migrate(settings_env)
    assert name not in again["names"] and district_id not in again["districts"].values()
    assert all(v == 0 for counts in again["adopted"].values() for v in counts.values())
    supervisor = api.as_("district", district_id)
    listed = supervisor.get("/v1/schools").json()["items"]
    assert [s["school_id"] for s in listed] == [school["school_id"]]


# -- attendance per pupil (#14.2) ------------------------------------------------------------
def test_the_venue_or_the_school_marks_who_came_against_the_roster(api, districts, stack):
    venue = Venue(api, name="上海天文馆 attendance")
    session = venue.publish(starts_at=iso(timedelta(seconds=4)),
                            ends_at=iso(timedelta(hours=2)))
    school = School(api)
    label = "五年级(2)班"
    pupils = {"pupils": [{"name": f"学生{i}", "ref": f"{i:03d}", "guardians": [
        {"name": f"家长{i}", "relation": "母亲", "email": f"g{i}-{uuid.uuid4().hex[:6]}@e.com",
         "channel": "email"}]} for i in range(3)]}
    path = f"/v1/schools/{school.id}/rosters/{quote(label)}"
    assert school.client.put(path, json=pupils).status_code in (200, 201)
    roster = school.client.get(path).json()
    ids = [p["pupil_id"] for p in roster["pupils"]]
    claim = school.claim(session["session_id"], group(label, students=3)).json()
    assert claim["status"] == "confirmed", claim
    url = f"/v1/sessions/{session['session_id']}/attendance"

    def record(client, body):
        r = client.post(url, json=body)
        return [r] if r.status_code != 409 else None  # not started yet: wait

    [done] = wait_for(lambda: record(venue.client, {"records": [{
        "claim_id": claim["claim_id"], "teachers": 2,
        "groups": [{"label": label, "pupil_ids": ids[:2]}]}]}), timeout=15)
    assert done.status_code == 200, done.text
    attendance = done.json()["items"][0]["attendance"]
    assert (attendance["form"], attendance["students"]) == ("pupils", 2)
    assert attendance["groups"][0]["pupil_ids"] == ids[:2]
    unknown = venue.client.post(url, json={"records": [{
        "claim_id": claim["claim_id"], "groups": [{"label": label,
                                                   "pupil_ids": [ids[0], "pup_nobody"]}]}]})
    body = problem(unknown, 422)
    assert "records.0.groups.0.pupil_ids" in body["errors"]
    by_school = school.client.post(url, json={"records": [{
        "claim_id": claim["claim_id"], "groups": [{"label": label, "pupil_ids": ids}]}]})
    assert by_school.status_code == 200, by_school.text
    assert by_school.json()["items"][0]["attendance"]["students"] == 3
    counted = school.client.post(url, json={"records": [{"claim_id": claim["claim_id"],
                                                         "students": 3}]})
    assert counted.json()["items"][0]["attendance"]["form"] == "count"
    problem(School(api).client.post(url, json={"records": [{"claim_id": claim["claim_id"],
                                                            "students": 1}]}), 403)
