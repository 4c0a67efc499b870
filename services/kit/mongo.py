"""MongoDB for nameko services: one client per container, one database per service.

Workers never see a raw database: `Store(SomeRepository)` hands them the service's domain
repository, built once at container start with its indexes ensured.

Code keeps to the portable subset (CRUD, conditional `find_one_and_update`,
`$inc`/`$set`/`$unset`/`$setOnInsert`, unique and compound indexes, `bulk_write`, and
`aggregate` with `$match`/`$group`/`$sort`/`$project`/`$lookup`), so it is correct on
MongoDB 7. Where the local stand-in differs, the workaround is chosen to be right on both,
and the place says so in one line: `(kit/mongo.py, "nx-27017")`.

nx-27017
--------
The stand-in server (nx-27017 0.8) that development and tests run on. Its quirks:

- Array updates of sub-documents: `$push`, `$pull` and positional `$set` (`a.$.b`) are
  mishandled. Keep collections of sub-documents as maps keyed by id, updated with dotted
  `$set`/`$unset`/`$inc` and whole-field `$set`.
- Paths through `_id`: queries and updates on `_id.x` misbehave; keep `_id` a scalar.
- ISO-looking strings are compared as times: a string that *starts* like an ISO-8601
  time is read as a time, to the second, so `2026-…Z|id` keys compare equal within a
  second, and `""` compares with no such string. Sort keys begin with a non-digit
  (`kit.pages.sort_key`: `@…`); a line order on such strings is compared in Python; a
  lower bound for them is a real stamp (`1970-01-01T00:00:00.000000Z`), not `""`.
- Datetimes written by `$set` come back as strings (`2026-12-03 23:39:30.384000`), so
  Kepu stores times as stamp strings (`kit.clock`). The one exception is a TTL field
  (`expires_at`): a BSON datetime, written on insert only (`kit.clock.expiry`).
- TTL indexes: `create_index(..., expireAfterSeconds=0)` is accepted and expired
  documents stop being returned; code must still not rely on the deletion happening (a
  record read after its expiry counts as absent; the gateway keeps its sweep).
- `$or` drops sibling range conditions: put range conditions under `$and` or compare
  equality with the value read.
- Time ranges (a condition on an ISO-looking string) are never answered from an index, and
  beside a `$in` the whole collection is compared in Python (~60 ms for a few thousand
  documents): find by one indexed equality or by the time range alone, and filter the
  rest in Python or in a following write by `_id`.
- Index use: equality (and a range on one field) is answered from single-field indexes,
  not from compound ones, and `$in` is indexed only on `_id`: fetch by `_id` with `$in`
  and filter the rest in Python where it matters. On a hot path prefer the single-field
  index that narrows most (a claim's session, a roster's school), which serves MongoDB 7
  as well; a compound one there made the stand-in scan (a waitlist read 3.2 → 0.8 ms).
- `$unset` of more than ~126 paths in one update is silently ignored: unset in groups
  of 100.
- Expression depth is limited (1000): keep conditions per update in groups of ~200.
- `$group` groups by a single field only: one group-by per key.
- No geo operators (`$near`, `2dsphere`): a bounding box on indexed lat/lon, then
  distance in Python.
- Throughput: a few thousand commands per second; `update_many` with `$in` beats a
  `bulk_write` of single updates; long reconciliations take minutes.
"""

from __future__ import annotations

import threading
from typing import Any

from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider, SharedExtension
from pymongo import MongoClient, WriteConcern
from pymongo.database import Database

from services.kit import doorbell, metrics
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
    metrics.install(app_name, options)  # counts commands only with KEPU_COUNT_DB_COMMANDS=1
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
    """Injects the service's repository (not the database) into each worker, and rings
    the relays after a worker that staged outbox events (`kit.doorbell`)."""

    mongo = MongoConnection()

    def __init__(self, repository_cls: type[Repository]) -> None:
        self.repository_cls = repository_cls
        self.repository: Repository | None = None
        self.bell: doorbell.Bell | None = None

    def setup(self) -> None:
        settings = self.container.config["KEPU_SETTINGS"]
        self.repository = self.repository_cls(self.mongo.database, settings)
        self.repository.ensure_indexes()
        amqp_uri = self.container.config.get(AMQP_URI_CONFIG_KEY)
        self.bell = doorbell.Bell(amqp_uri, self.repository.db.name) if amqp_uri else None

    def get_dependency(self, worker_ctx: Any) -> Repository:
        assert self.repository is not None
        return self.repository

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        """After the worker's writes, failed or not: what it staged is in the database."""
        if self.bell is not None:
            self.bell.after_work()
