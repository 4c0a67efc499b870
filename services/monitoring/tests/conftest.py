from __future__ import annotations

import uuid
from collections.abc import Iterator

import pymongo
import pytest

from services.monitoring.repository import MonitoringRepository


@pytest.fixture()
def repos(mongo_url: str) -> Iterator:
    """A factory of monitoring repositories, each on a fresh database, dropped afterwards."""
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    names: list[str] = []

    def make() -> MonitoringRepository:
        names.append(f"unit_mon_{uuid.uuid4().hex[:10]}")
        repo = MonitoringRepository(client[names[-1]])
        repo.ensure_indexes()
        return repo

    yield make
    for name in names:
        client.drop_database(name)
    client.close()
