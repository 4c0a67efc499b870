from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kit import clock
from services.notifications.repository import NotificationsRepository


@pytest.fixture()
def repo(db):
    from services.kit.config import Settings

    repository = NotificationsRepository(db, Settings(jwt_secret="unit"))
    repository.ensure_indexes()
    return repository


class Clock:
    """A settable clock for the domain code (services.kit.clock)."""

    def __init__(self, when: datetime) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when

    def set(self, when: datetime) -> None:
        self.when = when

    def advance(self, **delta: float) -> None:
        self.when += timedelta(**delta)


@pytest.fixture()
def frozen():
    fake = Clock(datetime(2026, 11, 23, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    clock.set_clock(fake)
    yield fake
    clock.set_clock(None)
