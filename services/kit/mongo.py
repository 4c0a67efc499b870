"""MongoDB for nameko services: one client per container, one database per service.

Workers never see a raw database: `Store(SomeRepository)` hands them the service's domain
repository, built once at container start with its indexes ensured.

The stand-in server (nx-27017) mishandles array updates of sub-documents ($push, $pull,
positional $set) and paths through `_id`; repositories keep to maps updated with dotted
`$set`/`$unset`/`$inc`, whole-field `$set`, and conditional `find_one_and_update`, which
behave the same on MongoDB 7.
"""

from __future__ import annotations

import threading
from typing import Any

from nameko.extensions import DependencyProvider, SharedExtension
from pymongo import MongoClient, WriteConcern
from pymongo.database import Database

from services.kit.config import Settings

OUTBOX_INDEX = "outbox_pending"


def connect(settings: Settings, app_name: str = "kepu") -> MongoClient:
    """A client configured the way every Kepu process uses MongoDB (UTC-aware datetimes)."""
    options: dict[str, Any] = {
        "tz_aware": True,
        "appname": app_name,
        "serverSelectionTimeoutMS": 10_000,
        "connectTimeoutMS": 5_000,
        "maxPoolSize": 50,
    }
    if settings.write_concern_majority:
        options["w"] = "majority"
    return MongoClient(settings.mongo_url, **options)


class Repository:
    """Base of a service's domain repository.

    `outbox_collections` lists the collections whose documents carry outbox entries; the
    relay finds them by their `outbox_pending` index.
    """

    outbox_collections: tuple[str, ...] = ()

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        if settings.write_concern_majority:
            self.db = db.with_options(write_concern=WriteConcern(w="majority"))

    def ensure_indexes(self) -> None:
        """Create the indexes this repository relies on; subclasses extend it."""
        for name in self.outbox_collections:
            self.db[name].create_index(OUTBOX_INDEX)


class MongoConnection(SharedExtension):
    """The container's MongoDB client, created on first use and closed when it stops."""

    def __init__(self) -> None:
        super().__init__()
        self._client: MongoClient | None = None
        self._lock = threading.Lock()

    @property
    def settings(self) -> Settings:
        return self.container.config["KEPU_SETTINGS"]

    @property
    def client(self) -> MongoClient:
        with self._lock:
            if self._client is None:
                self._client = connect(self.settings, self.container.service_name)
            return self._client

    @property
    def database(self) -> Database:
        return self.client[self.settings.database(self.container.service_name)]

    def setup(self) -> None:
        self.client  # noqa: B018 - connect at start, not on the first request

    def stop(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def kill(self) -> None:
        self.stop()


class Store(DependencyProvider):
    """Injects the service's repository (not the database) into each worker."""

    mongo = MongoConnection()

    def __init__(self, repository_cls: type[Repository]) -> None:
        self.repository_cls = repository_cls
        self.repository: Repository | None = None

    def setup(self) -> None:
        settings = self.container.config["KEPU_SETTINGS"]
        self.repository = self.repository_cls(self.mongo.database, settings)
        self.repository.ensure_indexes()

    def get_dependency(self, worker_ctx: Any) -> Repository:
        assert self.repository is not None
        return self.repository
