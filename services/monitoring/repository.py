"""The monitoring service's data: the event archive, the facts, and cached term reports.

A term report (per district, term, scope and drill-down) is computed from the facts
(figures.py) and kept with the time it was computed. It is served again while no event was
archived since (less FOLD_MARGIN_S for an event archived but not yet folded), or while it
is younger than `KEPU_MONITORING_STALE_S` (default 60 s); the service's timer recomputes,
every `KEPU_MONITORING_REFRESH_S` (default 10 s), the reports read lately whose facts
changed. So reads answer from the cache, and figures lag the events by about the refresh
period plus one computation. Folding writes no counter: the archive's arrival times are
the change marker.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from pymongo.database import Database

from services.kit import clock
from services.kit.config import Settings
from services.kit.errors import NotFound
from services.kit.mongo import Repository
from services.monitoring import figures, history
from services.monitoring.archive import Archive
from services.monitoring.facts import Facts
from services.monitoring.figures import Filter, Scope

FOLD_MARGIN_S = 5.0  # longer than an event takes from its archiving to its fold
READ_MARK_S = 60.0  # how often a served report notes that it is still being read
KEEP_REFRESHING_S = 3600.0  # the timer refreshes reports read within the last hour


def cache_key(district_id: str, term: str, scope: Scope, flt: Filter) -> str:
    return json.dumps([district_id, term, scope.as_dict(), vars(flt)], sort_keys=True,
                      ensure_ascii=False)


def stale_seconds() -> float:
    return float(os.environ.get("KEPU_MONITORING_STALE_S", "60"))


def refresh_seconds() -> float:
    return float(os.environ.get("KEPU_MONITORING_REFRESH_S", "10"))


class MonitoringRepository(Repository):
    outbox_collections = ()

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        super().__init__(db, settings or Settings())
        self.archive = Archive(self.db.archive)
        self.facts = Facts(self.db)
        self.stale_s = stale_seconds()
        self.fold_margin_s = FOLD_MARGIN_S

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        self.archive.ensure_indexes()
        self.facts.ensure_indexes()

    # -- the projection ------------------------------------------------------------------
    def consume(self, envelope: dict[str, Any]) -> None:
        """Archive, then fold, an event (again harmlessly, after a crash between the two)."""
        self.archive.keep(envelope)
        self.facts.fold(envelope)

    def rebuild(self) -> int:
        """Drop the read models and fold the whole archive again; the events folded."""
        self.facts.drop()
        self.db.reports.drop()
        self.facts.ensure_indexes()
        folded = 0
        for envelope in self.archive.replay():
            folded += self.facts.fold(envelope)
        self.db.reports.drop()  # a report read during the rebuild saw half the facts
        return folded

    # -- reading -------------------------------------------------------------------------
    def term_report(self, district_id: str, term: str, scope: Scope,
                    flt: Filter | None = None) -> dict[str, Any]:
        """Every view of a district's term for this scope and drill-down, from the cache
        while it is fresh (or younger than stale_s: the refresh timer is on it)."""
        flt = flt or Filter()
        key = cache_key(district_id, term, scope, flt)
        cached = self.db.reports.find_one({"_id": key})
        now = time.time()
        if cached and (now - cached["at"] < self.stale_s or not self._changed(cached)):
            if now - cached.get("read_at", 0) > READ_MARK_S:
                self.db.reports.update_one({"_id": key}, {"$set": {"read_at": now}})
            return cached["report"]
        return self._compute(key, district_id, term, scope, flt)

    def _changed(self, cached: dict[str, Any]) -> bool:
        return self.archive.newer_than(cached["at"] - self.fold_margin_s)

    def _compute(self, key: str, district_id: str, term: str, scope: Scope,
                 flt: Filter) -> dict[str, Any]:
        started = time.time()
        facts = figures.load(self.db, district_id, term, scope, flt)
        if scope.schools is not None and not facts.schools:
            raise NotFound(f"no figures of yours in district {district_id}",
                           code="district-not-found")
        report = {"district_id": district_id, "term": term, "scope": scope.as_dict(),
                  "filter": {k: v for k, v in vars(flt).items() if v is not None},
                  "computed_at": clock.stamp(), **figures.report(facts)}
        # the replacement names its _id: an upserting replace_one on nx-27017 does not
        # take it from the filter (kit/mongo.py, "nx-27017")
        self.db.reports.replace_one({"_id": key}, {
            "_id": key, "at": started, "read_at": started, "report": report,
            "args": {"district_id": district_id, "term": term, "scope": scope.as_dict(),
                     "filter": vars(flt)}}, upsert=True)
        return report

    def refresh(self, budget_s: float = 60.0) -> int:
        """Recompute the cached reports read lately whose facts changed (the service's
        timer): reads then find them fresh instead of computing during a request."""
        done, deadline = 0, time.time() + budget_s
        recent = {"read_at": {"$gt": time.time() - KEEP_REFRESHING_S}}
        for cached in self.db.reports.find(recent, {"report": 0}).sort("at", 1):
            if time.time() > deadline:
                break
            if not self._changed(cached):
                continue
            args = cached["args"]
            scope = Scope(*(frozenset(v) if v is not None else None
                            for v in (args["scope"]["schools"], args["scope"]["venues"])))
            try:
                self._compute(cached["_id"], args["district_id"], args["term"], scope,
                              Filter(**args["filter"]))
            except NotFound:
                self.db.reports.delete_one({"_id": cached["_id"]})
            done += 1
        return done

    def school_history(self, school_ids: list[str], term: str) -> dict[str, dict[str, int]]:
        return history.school_history(self.db, school_ids, term)

    def counts(self, term: str | None = None) -> dict[str, Any]:
        return {**history.counts(self.db, term), "archived": self.archive.counts()}
