"""The catalogue (课程菜单) and series through the gateway."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.venues.catalogue import haversine_km
from tests.support import problem
from tests.venues_helpers import Staff, iso

pytestmark = pytest.mark.stack

SHANGHAI = ZoneInfo("Asia/Shanghai")
SCHOOL_AT = (31.2304, 121.4737)  # People's Square, Shanghai
PLACES = [  # in the order of their distance from SCHOOL_AT
    ("上海自然博物馆", 31.2352, 121.4597),
    ("上海科技馆", 31.2196, 121.5447),
    ("上海天文馆", 30.8975, 121.9277),
    ("中国科学技术馆", 40.0046, 116.3870),
]


@pytest.fixture(scope="module")
def district():
    return f"测试区-{uuid.uuid4().hex[:6]}"  # this module's sessions only


@pytest.fixture(scope="module")
def venues(api, district):
    return [Staff(api, name=name, district=district, location={"lat": lat, "lon": lon})
            for name, lat, lon in PLACES]


def walk(client, **params):
    items, cursor = [], None
    while True:
        page = client.get("/v1/sessions", params={**params, **({"cursor": cursor} if cursor
                                                                 else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_near_sorts_by_distance_with_the_distance_shown(api, venues, district):
    for staff in reversed(venues):
        staff.publish()
    school = api.as_("school", "sch_near")
    lat, lon = SCHOOL_AT
    items = walk(school, district=district, near=f"{lat},{lon}", limit=3)
    assert [i["venue"]["name"] for i in items] == [name for name, _, _ in PLACES]
    for item, (_, plat, plon) in zip(items, PLACES, strict=True):
        assert item["distance_km"] == pytest.approx(haversine_km(lat, lon, plat, plon), abs=0.01)
    assert 1 < items[0]["distance_km"] < 2 and 1000 < items[-1]["distance_km"] < 1100
    close = school.get("/v1/sessions", params={"district": district, "near": f"{lat},{lon}",
                                               "radius_km": 10}).json()["items"]
    assert [i["venue"]["name"] for i in close] == ["上海自然博物馆", "上海科技馆"]
    assert all("capacity" in i and "seats_left" in i for i in close)


def test_grade_overlap_and_free_filters(api, venues, district):
    staff = venues[0]
    tag = uuid.uuid4().hex[:6]
    for grades, price in (([1, 3], 0), ([4, 6], 3000), ([7, 9], 0)):
        staff.publish(title=f"{tag} {grades} {price}", grades=grades, price_fen=price)
    school = api.as_("school", "sch_filters")

    def titles(**params):
        found = walk(school, district=district, venue_id=staff.id, **params)
        return {i["title"] for i in found if i["title"].startswith(tag)}

    assert titles(grade=3) == {f"{tag} [1, 3] 0"}
    assert titles(grade=3, grade_max=5) == {f"{tag} [1, 3] 0", f"{tag} [4, 6] 3000"}
    assert titles(free="true") == {f"{tag} [1, 3] 0", f"{tag} [7, 9] 0"}
    assert titles(free="false") == {f"{tag} [4, 6] 3000"}
    assert titles(grade=8, free="true") == {f"{tag} [7, 9] 0"}


def test_a_cursor_walk_returns_every_session_once_in_time_order(api, venues, district):
    staff = venues[1]
    made = [staff.publish(starts_at=iso(days=20, hours=h), ends_at=iso(days=20, hours=h + 1))
            for h in (7, 3, 11, 1, 9, 5, 2)]
    items = walk(api.as_("finance", "district-1"), venue_id=staff.id, limit=2)
    mine = [i["session_id"] for i in items if i["session_id"] in {m["session_id"] for m in made}]
    assert mine == [m["session_id"] for m in sorted(made, key=lambda m: m["starts_at"])]
    ids = [i["session_id"] for i in items]
    assert len(ids) == len(set(ids))


def test_bad_catalogue_queries_name_the_field(api):
    school = api.as_("school", "sch_bad")
    for params, field in [({"near": "here"}, "near"), ({"grade": 0}, "grade"),
                          ({"radius_km": 3}, "radius_km"), ({"cursor": "!!"}, "cursor"),
                          ({"status": "gone"}, "status"), ({"limit": 500}, "limit")]:
        body = problem(school.get("/v1/sessions", params=params), 422)
        assert field in body["errors"], (params, body)


def test_a_weekly_series_crosses_a_month_boundary_in_shanghai(api):
    staff = Staff(api, name="周末科学营 Weekend science camp")
    # the last day of a month at least a month away, and the day after it
    first = datetime.now(SHANGHAI).date().replace(day=1) + timedelta(days=62)
    last_day = first.replace(day=1) - timedelta(days=1)
    next_day = last_day + timedelta(days=1)
    starts = datetime.combine(last_day, datetime.min.time(), tzinfo=SHANGHAI).replace(hour=7)
    response = staff.client.post(f"/v1/venues/{staff.id}/sessions", json={
        "title": "晨间观鸟 Morning birds", "category": "science", "audience": "family",
        "grades": [1, 6], "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1, minutes=30)).isoformat(),
        "capacity": 30, "price_fen": 0,
        "repeat": {"weekly": {"weekdays": [last_day.isoweekday(), next_day.isoweekday()],
                              "until": (last_day + timedelta(days=8)).isoformat()}}})
    assert response.status_code == 201, response.text
    series = response.json()
    days = [last_day, next_day, last_day + timedelta(days=7), last_day + timedelta(days=8)]
    expected = [datetime.combine(d, datetime.min.time(), tzinfo=SHANGHAI).replace(hour=7)
                .astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000Z") for d in days]
    assert [s["starts_at"] for s in series["sessions"]] == expected
    assert expected[1].startswith(last_day.isoformat())  # 07:00 on the 1st is the 31st in UTC
    assert {s["series_id"] for s in series["sessions"]} == {series["series_id"]}
    listed = walk(api.as_("school", "sch_series"), series_id=series["series_id"])
    assert [s["starts_at"] for s in listed] == expected
