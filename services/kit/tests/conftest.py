from __future__ import annotations

import uuid

import pymongo
import pytest


@pytest.fixture()
def db(mongo_url):
    """A fresh database on the test run's nx-27017, dropped afterwards."""
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    name = f"unit_{uuid.uuid4().hex[:10]}"
    yield client[name]
    client.drop_database(name)
    client.close()
