"""The catalogue: filters, distance order, status, and cursor walks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.kit import clock
from services.kit.errors import ValidationFailed
from services.venues.catalogue import bounding_box, haversine_km
from services.venues.tests.conftest import ADMIN
from services.venues.tests.helpers import at, publish

PEOPLES_SQUARE = (31.2304, 121.4737)
PLACES = {  # name: (lat, lon, district)
    "natural_history": (31.2352, 121.4597, "静安区"),
    "science_museum": (31.2196, 121.5447, "浦东新区"),
    "lingang_planetarium": (30.9000, 121.9300, "浦东新区"),
    "beijing_planetarium": (39.9370, 116.3300, "西城区"),
}


@pytest.fixture()
def places(repo):
    made = {}
    for name, (lat, lon, district) in PLACES.items():
        made[name] = repo.register_venue({
            "name": name, "kind": "science_museum", "district": district,
            "location": {"lat": lat, "lon": lon}, "address": name, "timezone": "Asia/Shanghai",
            "contact": None, "accessibility": None}, ADMIN)
    return made


def search(repo, **args):
    return repo.catalogue.search({k: str(v) for k, v in args.items()})


def walk(repo, **args):
    seen, cursor = [], None
    while True:
        page = search(repo, **args, **({"cursor": cursor} if cursor else {}))
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_haversine_and_box_agree_with_known_distances():
    assert haversine_km(31.2304, 121.4737, 39.9042, 116.4074) == pytest.approx(1067, abs=3)
    box = bounding_box(31.23, 121.47, 10)
    for bearing in range(0, 360, 15):  # points 10 km away in every direction are inside
        import math

        lat = 31.23 + 9.999 / 111.195 * math.cos(math.radians(bearing))
        lon = 121.47 + 9.999 / (111.195 * math.cos(math.radians(lat))) * math.sin(
            math.radians(bearing))
        assert box["lat"]["$gte"] <= lat <= box["lat"]["$lte"]
        assert box["lon"]["$gte"] <= lon <= box["lon"]["$lte"]


def test_near_sorts_by_distance_and_reports_it(repo, places):
    for venue in places.values():
        publish(repo, venue)
    lat, lon = PEOPLES_SQUARE
    items = search(repo, near=f"{lat},{lon}")["items"]
    assert [i["venue"]["name"] for i in items] == list(PLACES)
    for item in items:
        where = item["venue"]["location"]
        assert item["distance_km"] == pytest.approx(
            haversine_km(lat, lon, where["lat"], where["lon"]), abs=0.001)
    assert 1.0 < items[0]["distance_km"] < 2.0 and 1000 < items[-1]["distance_km"] < 1100
    nearby = search(repo, near=f"{lat},{lon}", radius_km=10)["items"]
    assert [i["venue"]["name"] for i in nearby] == ["natural_history", "science_museum"]


def test_a_walk_by_distance_returns_every_session_once_in_order(repo, places):
    for venue in places.values():
        for days in (5, 6, 7):
            publish(repo, venue, starts_at=at(days=days), ends_at=at(days=days, hours=1))
    lat, lon = PEOPLES_SQUARE
    seen = walk(repo, near=f"{lat},{lon}", limit=2)
    assert len(seen) == 12 and len({s["session_id"] for s in seen}) == 12
    distances = [s["distance_km"] for s in seen]
    assert distances == sorted(distances)


def test_a_walk_by_time_returns_every_session_once_in_order(repo, venue):
    made = [publish(repo, venue, starts_at=at(days=3, hours=h), ends_at=at(days=3, hours=h + 1))
            for h in (5, 1, 9, 3, 7, 2, 8, 4, 6, 10, 0)]
    seen = walk(repo, limit=3)
    assert [s["session_id"] for s in seen] == [
        s["session_id"] for s in sorted(made, key=lambda s: s["starts_at"])]


def test_grades_overlap(repo, venue):
    for grades in ([1, 3], [4, 6], [7, 9], [1, 12]):
        publish(repo, venue, grades=grades, title=f"grades {grades}")
    assert {s["title"] for s in search(repo, grade=3)["items"]} == {"grades [1, 3]",
                                                                    "grades [1, 12]"}
    assert {s["title"] for s in search(repo, grade=3, grade_max=4)["items"]} == {
        "grades [1, 3]", "grades [4, 6]", "grades [1, 12]"}
    assert {s["title"] for s in search(repo, grade=10)["items"]} == {"grades [1, 12]"}


def test_free_category_audience_venue_and_district(repo, places):
    publish(repo, places["science_museum"], price_fen=0, title="free")
    publish(repo, places["science_museum"], price_fen=2000, title="paid", category="arts")
    publish(repo, places["natural_history"], price_fen=0, title="family", audience="family")
    assert {s["title"] for s in search(repo, free="true")["items"]} == {"free", "family"}
    assert {s["title"] for s in search(repo, free="false")["items"]} == {"paid"}
    assert {s["title"] for s in search(repo, category="arts")["items"]} == {"paid"}
    assert {s["title"] for s in search(repo, audience="family")["items"]} == {"family"}
    assert {s["title"] for s in search(repo, district="浦东新区")["items"]} == {"free", "paid"}
    assert {s["title"] for s in search(
        repo, venue_id=places["natural_history"]["_id"])["items"]} == {"family"}


def test_past_and_cancelled_are_hidden_unless_asked_for(repo, venue, now):
    publish(repo, venue, title="soon", starts_at=at(days=1), ends_at=at(days=1, hours=1))
    later = publish(repo, venue, title="later")
    called_off = publish(repo, venue, title="called off")
    repo.sessions.cancel(called_off["session_id"], "flood", ADMIN)
    assert {s["title"] for s in search(repo)["items"]} == {"soon", "later"}
    assert {s["title"] for s in search(repo, status="cancelled")["items"]} == {"called off"}
    now.set(clock.now() + timedelta(days=2))
    assert {s["title"] for s in search(repo)["items"]} == {"later"}
    past = search(repo, status="past")["items"]
    assert [(s["title"], s["status"]) for s in past] == [("soon", "past")]
    assert {s["title"] for s in search(repo, status="open,past")["items"]} == {"soon", "later"}
    assert len(search(repo, status="all")["items"]) == 3
    assert later["session_id"] in {s["session_id"] for s in search(repo, available="true")["items"]}


def test_dates_are_days_in_shanghai(repo, venue):
    # NOW is 2026-09-01 10:00 in Shanghai; 00:30 on 9 September there is 8 September in UTC
    early = publish(repo, venue, title="early", starts_at="2026-09-09T00:30:00+08:00",
                    ends_at="2026-09-09T02:00:00+08:00")
    publish(repo, venue, title="evening", starts_at="2026-09-08T20:00:00+08:00",
            ends_at="2026-09-08T21:00:00+08:00")
    assert early["starts_at"].startswith("2026-09-08T16:30")
    titles = {s["title"] for s in search(repo, **{"from": "2026-09-09", "to": "2026-09-09"})[
        "items"]}
    assert titles == {"early"}
    assert {s["title"] for s in search(repo, to="2026-09-08")["items"]} == {"evening"}


@pytest.mark.parametrize(("args", "field"), [
    ({"cursor": "bm9wZQ"}, "cursor"),
    ({"grade": 13}, "grade"),
    ({"near": "north"}, "near"),
    ({"radius_km": 5}, "radius_km"),
    ({"status": "sold"}, "status"),
    ({"from": "yesterday"}, "from"),
    ({"limit": 0}, "limit"),
    ({"colour": "red"}, "colour"),
])
def test_bad_queries_name_the_field(repo, args, field):
    with pytest.raises(ValidationFailed) as caught:
        search(repo, **args)
    assert field in caught.value.errors


def test_keys_written_before_kit_pages_are_rekeyed_and_still_listed(repo, venue, now):
    soon, later = publish(repo, venue, title="soon"), publish(repo, venue, title="later",
                                                               starts_at=at(days=8),
                                                               ends_at=at(days=8, hours=2))
    for session in (soon, later):  # the old "t<stamp>|<id>" keys
        repo.db.sessions.update_one({"_id": session["session_id"]}, {"$set": {
            "sort_key": f"t{session['starts_at']}|{session['session_id']}",
            "end_key": f"t{session['ends_at']}"}})
    assert repo.rekey() == 2
    assert repo.rekey() == 0
    assert [s["title"] for s in walk(repo, limit=1)] == ["soon", "later"]
    now.set(clock.parse(soon["starts_at"]) + timedelta(minutes=5))
    assert [s["title"] for s in search(repo)["items"]] == ["later"]
    assert [s["title"] for s in search(repo, status="started")["items"]] == ["soon"]


def test_a_cursor_from_before_time_moved_on_never_lists_a_started_session(repo, venue, now):
    first, second, third = (publish(repo, venue, title=t, starts_at=at(days=d),
                                    ends_at=at(days=d, hours=2))
                            for t, d in (("a", 1), ("b", 2), ("c", 3)))
    page = search(repo, limit=1)
    assert [s["title"] for s in page["items"]] == ["a"]
    now.set(clock.parse(second["starts_at"]) + timedelta(minutes=1))  # "b" has started
    rest = search(repo, cursor=page["next_cursor"])["items"]
    assert [s["title"] for s in rest] == ["c"]
