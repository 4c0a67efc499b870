"""A service that exists only in tests: it counts what it receives and fails on demand.

- `venues.venue_registered` increments a counter per venue with a non-idempotent `$inc`,
  so an event applied twice shows as 2.
  A venue named "POISON…" is data it cannot process: it fails every time.
- `booking.school_registered` fails while the switch `broken` is on, else records it.
"""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc

import services.contracts  # noqa: F401 - registers the event types it consumes
from services.kit.context import LogContext
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.mongo import Repository, Store


class ProbeRepository(Repository):
    def ensure_indexes(self) -> None:
        super().ensure_indexes()


class ProbeBroken(Exception):
    pass


class ProbeService(Health):
    name = "probe"
    store = Store(ProbeRepository)
    log_context = LogContext()

    @subscribe("venues.venue_registered")
    def on_venue(self, event: dict[str, Any]) -> None:
        if event["data"]["name"].startswith("POISON"):
            raise ValueError("the probe cannot process this venue's data")
        self.store.db.venue_counts.update_one({"_id": event["data"]["venue_id"]},
                                              {"$inc": {"applied": 1},
                                               "$set": {"event_id": event["event_id"]}},
                                              upsert=True)

    @subscribe("booking.school_registered")
    def on_school(self, event: dict[str, Any]) -> None:
        switch = self.store.db.switches.find_one({"_id": "broken"})
        if switch and switch.get("on"):
            raise ProbeBroken("the probe is switched to fail")
        self.store.db.school_counts.update_one({"_id": event["data"]["school_id"]},
                                               {"$inc": {"applied": 1}}, upsert=True)

    @rpc
    def set_broken(self, on: bool) -> None:
        self.store.db.switches.update_one({"_id": "broken"}, {"$set": {"on": on}}, upsert=True)
