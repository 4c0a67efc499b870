"""The district dashboard: every chart's rows are JSON for static/dashboard.js beside a
table with the same figures; tables drill down with the API's own filters; a school sees
its own part (its district from its record, the API scoping the figures)."""

from __future__ import annotations

import json
import re
from typing import Any

from services.console.tests.conftest import FakeApi, sign_in_as

BASE = "/v1/monitoring/districts/dst_1/terms/2026-autumn"
REPORT = {"district_id": "dst_1", "term": "2026-autumn", "scope": {}, "computed_at": "x",
          "summary": {"trips_confirmed": 3, "coverage_rate": 0.5},
          "categories": [{"category": "zoo", "schools": 1, "share_of_schools": 0.5,
                          "activities": 2, "pupil_visits": 70}],
          "grades": [{"grade": 5, "trips": 2, "pupils_booked": 80,
                      "pupils_booked_on_attended": 70}],
          "satisfaction": {"satisfaction_rate": 0.75, "distribution": {
              "1": 0, "2": 1, "3": 0, "4": 2, "5": 1}},
          "priority": {"priority_schools": 1, "priority_enrolment": 300, "enrolment": 1000,
                       "enrolment_share": 0.3, "priority_seats": 20, "seats": 100,
                       "seat_share": 0.2, "gap": -0.1, "received_share": False},
          "admissions": {"family": {"bookings": 3, "people_checked_in": 6,
                                    "check_in_rate": 0.6667},
                         "training": {"bookings": 2, "people_checked_in": 1,
                                      "check_in_rate": 0.5}, "by_venue_week": []}}
SCHOOLS = {"items": [{"school_id": "sch_1", "name": "山村小学", "rural": True,
                      "under_resourced": False, "enrolment": 300, "participants": 20,
                      "participation_rate": 0.0667, "trips_attended": 1,
                      "seats_confirmed": 20, "covered": True, "kinds": ["zoo"]},
                     {"school_id": "sch_2", "name": "城区小学", "rural": False,
                      "under_resourced": False, "enrolment": 700, "participants": 0,
                      "participation_rate": 0.0, "trips_attended": 0,
                      "seats_confirmed": 80, "covered": False, "kinds": []}],
           "totals": {}}
TREND = {"items": [{"week": "2026-11-02", "trips_attended": 1, "pupil_visits": 20,
                    "tutor_visits": 0, "new_participants": 20, "participants_to_date": 20,
                    "participation_rate_to_date": 0.02}], "totals": {}}


def answering(fake: FakeApi) -> None:
    fake.on("GET", BASE, (200, REPORT))
    fake.on("GET", f"{BASE}/trend", (200, TREND))
    fake.on("GET", f"{BASE}/schools", (200, SCHOOLS))


def chart_rows(page: str, name: str) -> list[dict[str, Any]]:
    found = re.search(rf'<script type="application/json" id="chart-{name}-data">(.*?)</script>',
                      page, re.S)
    assert found, f"no data block for {name}"
    return json.loads(found.group(1))


def test_every_chart_has_its_json_rows_and_a_table_and_the_priority_verdict(client,
                                                                             fake) -> None:
    sign_in_as(client, fake, "district", "dst_1")
    answering(fake)
    page = client.get("/admin/district?term=2026-autumn").get_data(as_text=True)
    for name in ("trend", "coverage", "categories", "priority", "satisfaction"):
        assert f'data-chart-source="chart-{name}-data"' in page
        assert f'id="table-{name}"' in page
    assert chart_rows(page, "priority") == [{"label": "重点学校", "values": {
        "在校生占比（%）": 30.0, "座位占比（%）": 20.0}}]
    assert [r["values"]["评分数"] for r in chart_rows(page, "satisfaction")] == [0, 1, 0, 2, 1]
    assert "农村及薄弱学校获得的座位少于其应有份额" in page and "-10.0" in page
    assert '<script src="/static/dashboard.js" defer></script>' in page
    assert 'id="table-admissions"' in page and "66.7%" in page  # families apart
    assert "<script>" not in page  # only data blocks and files: CSP script-src 'self'


def test_tables_drill_down_with_the_apis_filters_and_a_school_row_shows_that_school(
        client, fake) -> None:
    sign_in_as(client, fake, "district", "dst_1")
    answering(fake)
    page = client.get("/admin/district?term=2026-autumn&category=zoo&grade=5"
                      "&week=2026-11-04&school=sch_1").get_data(as_text=True)
    sent = fake.sent("GET", BASE)[-1]["params"]
    assert sent == {"category": "zoo", "grade": "5", "week": "2026-11-04"}
    assert fake.sent("GET", f"{BASE}/schools")[-1]["params"] == sent
    assert "学校：山村小学" in page and 'id="school"' in page
    assert "school=sch_2" in page  # the other row links to its own figures
    assert "/admin/district/dst_1/2026-autumn.csv?" in page and "view=schools" in page


def test_a_bad_grade_is_not_sent_and_a_download_keeps_the_drill_down(client, fake) -> None:
    sign_in_as(client, fake, "district", "dst_1")
    answering(fake)
    client.get("/admin/district?term=2026-autumn&grade=abc")
    assert fake.sent("GET", BASE)[-1]["params"] is None
    fake.on("GET", f"{BASE}/csv", (200, "a,b"))
    client.get("/admin/district/dst_1/2026-autumn.csv?view=trend&category=zoo")
    assert fake.sent("GET", f"{BASE}/csv")[-1]["params"] == {"category": "zoo",
                                                             "view": "trend"}


def test_a_school_sees_its_own_part_of_its_district(client, fake) -> None:
    sign_in_as(client, fake, "school", "sch_1")
    fake.on("GET", "/v1/schools/sch_1", (200, {"school_id": "sch_1", "name": "山村小学",
                                               "district_id": "dst_1",
                                               "location": {"lat": 31.2, "lon": 121.5}}))
    answering(fake)
    answer = client.get("/admin/district?term=2026-autumn")
    assert answer.status_code == 200
    assert fake.sent("GET", BASE), "the school's district read from its own record"
