"""The monitoring service's data: the event archive, the facts, and cached term reports.

A handler only archives its event (one insert, keyed by the event id); `fold_pending`
folds the archived events not folded yet, a batch at a time, and stamps them folded. It
runs on the service's timer, and for up to READ_FOLD_S before a read computes from the
facts (a report, a school's history; the counts fold everything), so a read sees what was
archived unless a burst left more than that behind; the fold stamps then mark its report
as changed, for the timer to recompute.

A term report (per district, term, scope and drill-down) is computed from the facts
(figures.py) and kept with the time it was computed. It is served again while no event was
folded since (less FOLD_MARGIN_S for the clocks of several monitoring processes), or while
it is younger than `KEPU_MONITORING_STALE_S` (default 60 s); the service's timer folds,
then recomputes, every `KEPU_MONITORING_REFRESH_S` (default 10 s), the reports read lately
whose facts changed. So reads answer from the cache, and figures lag the events by about
the refresh period plus one computation. Folding writes no counter: the archive's fold
stamps are the change marker.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from services.kit import clock
from services.kit.config import Settings
from services.kit.errors import NotFound
from services.kit.mongo import Repository
from services.monitoring import figures, history, term_facts
from services.monitoring.archive import Archive
from services.monitoring.facts import Facts
from services.monitoring.term_facts import Filter, Scope

log = logging.getLogger("kepu.monitoring")

FOLD_MARGIN_S = 5.0  # more than the clocks of two monitoring processes disagree by
READ_FOLD_S = 1.0  # how long a read folds first (the timer folds the rest; folds are stamped)
FOLD_BATCH = 200  # events per fold: `$in` of their ids stays within nx-27017's limits
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
        """Archive an event, to be folded (the handler's one write; a repeat changes nothing)."""
        self.archive.keep(envelope)

    def fold_pending(self, budget_s: float = 60.0) -> int:
        """Fold the archived events not folded yet, a batch at a time; the number folded.

        Facts first, then the stamp: a crash between them folds the batch again, which
        changes nothing (facts.py). Several processes may fold the same batch at once."""
        folded, deadline = 0, time.time() + budget_s
        while time.time() <= deadline:
            envelopes = self.archive.pending(FOLD_BATCH)
            if not envelopes:
                break
            failed = self._fold(envelopes)
            for event_id, error in failed.items():
                self.archive.mark_failed(event_id, error)
            self.archive.mark_folded([e["event_id"] for e in envelopes
                                      if e["event_id"] not in failed], time.time())
            folded += len(envelopes) - len(failed)
            if len(envelopes) < FOLD_BATCH:
                break
        return folded

    def _fold(self, envelopes: list[dict[str, Any]]) -> dict[str, str]:
        """Fold a batch; {event id: error} of the events whose fold failed on their data.

        A database error propagates (the batch stays pending and is folded again); an event
        its fold cannot read is set aside, one by one, so it does not hold up the others."""
        try:
            self.facts.fold_many(envelopes)
            return {}
        except PyMongoError:
            raise
        except Exception:
            log.exception("a batch of %d events failed to fold; folding one by one",
                          len(envelopes))
        failed = {}
        for envelope in envelopes:
            try:
                self.facts.fold(envelope)
            except PyMongoError:
                raise
            except Exception as exc:
                log.error("event %s (%s) cannot be folded: %r", envelope["event_id"],
                          envelope["type"], exc)
                failed[envelope["event_id"]] = repr(exc)[:2000]
        return failed

    def rebuild(self) -> int:
        """Drop the read models and fold the whole archive again; the events folded."""
        self.facts.drop()
        self.db.reports.drop()
        self.facts.ensure_indexes()
        folded, batch = 0, []
        for envelope in self.archive.replay():
            batch.append(envelope)
            if len(batch) == FOLD_BATCH:
                folded += len(batch) - len(self._fold(batch))
                batch = []
        folded += len(batch) - len(self._fold(batch))
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
        fresh = bool(cached) and now - cached["at"] < self.stale_s
        if not fresh:
            self.fold_pending(READ_FOLD_S)
        if cached and (fresh or not self._changed(cached)):
            if now - cached.get("read_at", 0) > READ_MARK_S:
                self.db.reports.update_one({"_id": key}, {"$set": {"read_at": now}})
            return cached["report"]
        return self._compute(key, district_id, term, scope, flt)

    def _changed(self, cached: dict[str, Any]) -> bool:
        return self.archive.folded_since(cached["at"] - self.fold_margin_s)

    def _compute(self, key: str, district_id: str, term: str, scope: Scope,
                 flt: Filter) -> dict[str, Any]:
        started = time.time()
        facts = term_facts.load(self.db, district_id, term, scope, flt)
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
        self.fold_pending(budget_s)
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
        self.fold_pending(READ_FOLD_S)  # booking waits 2 s at most, then counts its own
        return history.school_history(self.db, school_ids, term)

    def counts(self, term: str | None = None) -> dict[str, Any]:
        self.fold_pending()
        return {**history.counts(self.db, term), "archived": self.archive.counts()}
