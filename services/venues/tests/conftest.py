from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.kit import clock
from services.kit.actor import Actor
from services.kit.config import Settings
from services.venues.repository import VenueRepository

NOW = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Tuesday
ADMIN = Actor(sub="admin-1", role="admin")




@pytest.fixture()
def now():
    """The clock stands at NOW; `now.set(datetime)` moves it."""

    class Clock:
        value = NOW

        def set(self, when: datetime) -> None:
            Clock.value = when

    clock.set_clock(lambda: Clock.value)
    yield Clock()
    clock.set_clock(None)


@pytest.fixture()
def repo(db, now):
    repository = VenueRepository(db, Settings())
    repository.ensure_indexes()
    return repository


@pytest.fixture()
def venue(repo):
    return repo.register_venue({
        "name": "上海科技馆", "kind": "science_museum", "district": "浦东新区",
        "location": {"lat": 31.2196, "lon": 121.5447}, "address": "世纪大道2000号",
        "timezone": "Asia/Shanghai", "contact": None, "accessibility": None}, ADMIN)


def staff(venue_id: str) -> Actor:
    return Actor(sub=f"staff-{venue_id}", role="venue", org=venue_id)
