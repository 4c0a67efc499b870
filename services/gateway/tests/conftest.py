"""A gateway over a test's own routes, a fake RPC and a throwaway database."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pymongo
import pytest

from services.gateway.app import Gateway
from services.gateway.routing import Route
from services.gateway.tests.fakes import FakeRpc
from services.kit.config import Settings


@pytest.fixture(scope="module")
def mongo(mongo_url: str) -> Iterator[pymongo.MongoClient]:
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    yield client
    client.close()


@pytest.fixture()
def gateway_with(mongo: pymongo.MongoClient
                 ) -> Iterator[Callable[[list[Route], str], Gateway]]:
    """Make a `Gateway` for these routes and secret; its database is dropped afterwards."""
    made: list[Settings] = []

    def make(routes: list[Route], secret: str) -> Gateway:
        settings = Settings(jwt_secret=secret, db_prefix=f"unit_{uuid.uuid4().hex[:10]}")
        made.append(settings)
        return Gateway(settings, rpc=FakeRpc(), mongo=mongo, routes=routes)

    yield make
    for settings in made:
        mongo.drop_database(settings.database("gateway"))
