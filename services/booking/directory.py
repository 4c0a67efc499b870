"""Booking's per-process directory of schools: what a claim copies from its school.

A claim copies its school's name and district (`claims.new_claim`). Reading the school per
claim cost one find per claim, and a burst from 1,000 schools missed any short cache. The
directory keeps id → {school_id, name, district, district_id} for every school, filled by
ONE find with a projection when a school is missing and the snapshot is older than
`RELOAD_AFTER_S` (else that one school is read alone), and told at once of schools this
process registers. Workers that miss together while the snapshot is old wait for the one
that reloads it: a burst's first claims arrive at once, and each reloading on its own read
every school once per worker (ten times over at the burst's start, measured by the bench).

Staleness bound: an entry is served at most `MAX_AGE_S` after the snapshot it came from
was read; after that the next lookup reloads the whole directory. So a school's name or
district edited by another process (today only the district migration edits them, and
this process forgets everything when it runs one) reaches new claims within `MAX_AGE_S`.
A school is never deleted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pymongo.collection import Collection

from services.kit.errors import NotFound

RELOAD_AFTER_S = 10.0  # a miss reloads every school if the snapshot is older than this
MAX_AGE_S = 300.0  # no entry is served from a snapshot older than this
COPIED = ("school_id", "name", "district", "district_id")
PROJECTION = {name: 1 for name in COPIED}


def copied(school: dict[str, Any]) -> dict[str, Any]:
    """What a claim copies from its school (and nothing else is kept)."""
    return {name: school.get(name) for name in COPIED}


class SchoolDirectory:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.known: dict[str, dict[str, Any]] = {}
        self.loaded_at = float("-inf")  # when the last whole snapshot was read
        # green under the services' runner, which patches threading before any import
        self.reloading = threading.Lock()

    def school(self, schools: Collection, school_id: str) -> dict[str, Any]:
        """The school as claims copy it; NotFound if there is no such school."""
        age = self.clock() - self.loaded_at
        if age > MAX_AGE_S:
            self.known.clear()
        found = self.known.get(school_id)
        if found is not None:
            return found
        if age > RELOAD_AFTER_S:
            self.reload_once(schools, seen=self.loaded_at)
            found = self.known.get(school_id)
        else:
            doc = schools.find_one({"_id": school_id}, PROJECTION)
            if doc is not None:
                found = self.known[school_id] = copied(doc)
        if found is None:
            raise NotFound(f"school {school_id} not found", code="school-not-found")
        return found

    def reload_once(self, schools: Collection, seen: float) -> None:
        """Reload unless another worker did while this one waited (`seen` is the snapshot
        this worker found too old)."""
        with self.reloading:
            if self.loaded_at == seen:
                self.reload(schools)

    def reload(self, schools: Collection) -> None:
        """Every school, in one find (only the copied fields)."""
        read_at = self.clock()
        self.known = {doc["_id"]: copied(doc) for doc in schools.find({}, PROJECTION)}
        self.loaded_at = read_at

    def learn(self, school: dict[str, Any]) -> None:
        """A school this process registered (or saw changed) is known at once."""
        if self.clock() - self.loaded_at <= MAX_AGE_S:
            self.known[school["school_id"]] = copied(school)

    def forget(self) -> None:
        """Drop everything (after a migration that edits schools in bulk)."""
        self.known = {}
        self.loaded_at = float("-inf")
