"""`GET /v1/venues`: venues page by id, narrowed by district and kind."""

from __future__ import annotations

from services.contracts.venues import VenueQuery
from services.kit.boundary import load
from services.venues.tests.conftest import ADMIN


def register(repo, name, kind, district):
    return repo.register_venue({
        "name": name, "kind": kind, "district": district,
        "location": {"lat": 31.2, "lon": 121.5}, "address": name,
        "timezone": "Asia/Shanghai", "contact": None, "accessibility": None}, ADMIN)


def test_venues_page_and_filter(repo):
    made = [register(repo, f"馆{i}", "zoo" if i % 2 else "science_museum", "浦东新区")
            for i in range(5)]
    seen, cursor = [], None
    while True:
        rows, cursor = repo.list_venues(load(VenueQuery, {"limit": "2", **(
            {"cursor": cursor} if cursor else {})}))
        seen += [r["venue_id"] for r in rows]
        if cursor is None:
            break
    assert sorted(seen) == sorted(v["venue_id"] for v in made) and len(seen) == 5
    zoos, _ = repo.list_venues(load(VenueQuery, {"kind": "zoo"}))
    assert {r["name"] for r in zoos} == {"馆1", "馆3"}
    none, _ = repo.list_venues(load(VenueQuery, {"district_id": "dis_elsewhere"}))
    assert none == []
