"""The outbox relay: publishes unsent outbox entries with publisher confirms, then marks them.

A separate process (`python -m services.kit.relay`). It finds outbox-bearing collections
("sources") by their `outbox_pending` index, leases documents with pending entries (so
several relays can run), publishes each document's entries in key order, and removes them
only after the broker confirmed them. A relay that dies between publish and mark publishes
again once the lease runs out; consumers skip the repeat by event id. Unroutable events (no
queue bound: nobody subscribes to that type) are confirmed by the broker and counted as sent.

Every database command is a round trip on the server the services share, during a burst
and on an idle stack alike (issue 18), so the relay keeps them few:

- **Polling is the lease.** A quiet source is polled with one `findAndModify` that leases
  any pending document and returns it: one command per poll while idle, two per document
  (lease, mark) for a lone event.
- **Bursts are leased and marked in batches.** A source that had work at its last poll is
  polled with a `find` of up to BATCH pending ids, leased with one `update_many` under a
  token of this poll, read back by the token and, after publishing, marked with one
  `update_many` per group of documents that published as many entries: four commands per
  batch, however many documents it holds.
- **Idle sources back off** from 50 ms to 1 s (`KEPU_RELAY_IDLE_POLL_S` sets another cap;
  `POLL_COLD_S` may set a longer wait for sources quiet for 10 minutes; it is 1 s too);
  any work resets it, and so does a ring (`kit.doorbell`): a service that staged events
  rings after writing them, and the relay polls that database's quiet sources at once. A
  ring while one of them is busy changes nothing: its next poll is at most 50 ms away,
  and an earlier one would split its batch into more commands. Sources are
  rediscovered every minute (every second, doubling, while they keep changing, as at a
  stack's start), not every pass.

Order holds per document: one thread publishes a leased document's entries in key order,
and the lease keeps other relays off it until they are marked. Sources are polled on up to
`KEPU_RELAY_WORKERS` threads at once. Stopped (SIGTERM), the relay makes one last pass, so
a restart delays no event by a backoff.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
from pymongo import MongoClient, ReturnDocument
from pymongo.collection import Collection

from services.kit import clock, doorbell, logs
from services.kit.config import Settings
from services.kit.event_publisher import Publisher
from services.kit.mongo import OUTBOX_INDEX, connect
from services.kit.outbox import PENDING_FIELD, mark_sent_update, pending

log = logging.getLogger("kepu.relay")

LEASE_S = 15
# A relay stops publishing a batch once this little of its lease is left: past the lease
# another relay may take a document, and two relays publishing one aggregate's events at
# once would still be harmless (consumers skip repeats) but no longer in order.
LEASE_MARGIN_S = 5
BATCH = 100  # documents leased per poll of a busy source
UNSET_PATHS = 98  # outbox keys per mark (+ lease and owner): nx-27017 ignores > ~126 paths
POLL_MIN_S = 0.05  # the wait after a poll that found work
POLL_WARM_S = 1.0  # the longest wait of a source that had work in the last WARM_S
# ... and of one that had none. Equal to the warm cap: a longer one (4 s was tried) saved
# idle commands but made the first event after a quiet spell wait, which a parent hears.
POLL_COLD_S = 1.0
WARM_S = 600
DISCOVER_S = 60.0  # sources are listed again this often once they stop changing
DISCOVER_FIRST_S = 1.0  # ... and this soon after a listing that found something new
RECHECK_S = 600.0  # collections without the outbox index are looked at again this often
YOUNG_S = 10.0  # ... and at every listing while new (a service may be creating its indexes)


@dataclass
class Source:
    """One outbox collection and when to poll it next."""

    coll: Collection
    due: float = 0.0  # monotonic time of the next poll
    wait: float = POLL_MIN_S / 2  # doubles after each empty poll, up to the cap
    warm_until: float = 0.0  # had work recently: polled at least every POLL_WARM_S
    busy: bool = False  # the last poll found work: the next one leases a batch
    polled_at: float = float("-inf")  # monotonic time of the last poll


def _free(now: str) -> dict[str, Any]:
    """Documents with pending entries and no live lease. Under `$and`: nx-27017 drops range
    conditions beside an `$or` (kit/mongo.py, "nx-27017")."""
    return {"$and": [{PENDING_FIELD: {"$gt": 0}},
                     {"$or": [{"outbox_lease": {"$exists": False}},
                              {"outbox_lease": {"$lt": now}}]}]}


class Relay:
    def __init__(self, settings: Settings, client: MongoClient | None = None,
                 publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.client = client or connect(settings, "relay")
        self.publisher = publisher or Publisher(settings)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._tokens = itertools.count(1)
        self._sources: dict[str, Source] = {}
        self._discover_at: float | None = None
        self._listed: dict[str, float] = {}
        self._recheck_at = 0.0
        self._discover_every = DISCOVER_FIRST_S
        self.stopping = threading.Event()
        self.wake = threading.Event()  # a ring, or the stop: the wait between rounds ends
        self._rung: set[str] = set()
        self._rung_lock = threading.Lock()
        self.fault = os.environ.get("KEPU_RELAY_FAULT", "")
        self._pool = ThreadPoolExecutor(settings.relay_workers, thread_name_prefix="relay")
        self.monotonic = time.monotonic  # a test may stand in a clock of its own

    # -- finding sources ----------------------------------------------------------------
    def sources(self) -> list[Collection]:
        """Collections with an outbox index, in every database of this deployment."""
        self._discover_if_due()
        return [source.coll for source in self._sources.values()]

    def _discover_if_due(self) -> None:
        """List the deployment's collections when due; look at the indexes of new ones (a
        service creates its indexes at start) and, every RECHECK_S, of all the others."""
        now = self.monotonic()
        if self._discover_at is not None and now < self._discover_at:
            return
        recheck = now >= self._recheck_at
        prefix = f"{self.settings.db_prefix}_"
        listed: dict[str, float] = {}  # collection -> first seen
        for db_name in self.client.list_database_names():
            if not db_name.startswith(prefix):
                continue
            db = self.client[db_name]
            for coll_name in db.list_collection_names():
                name = f"{db_name}.{coll_name}"
                listed[name] = first_seen = self._listed.get(name, now)
                young = now - first_seen < YOUNG_S
                if name in self._sources or not (young or recheck):
                    continue
                info = db[coll_name].index_information()
                if any(spec["key"][0][0] == OUTBOX_INDEX for spec in info.values()):
                    self._sources[name] = Source(db[coll_name], due=now,
                                                 warm_until=now + WARM_S)
        for gone in set(self._sources) - set(listed):
            del self._sources[gone]
        changed = set(listed) != set(self._listed)  # a stack starting: look again soon
        self._listed = listed
        if recheck:
            self._recheck_at = now + RECHECK_S
        self._discover_every = DISCOVER_FIRST_S if changed else \
            min(self._discover_every * 2, DISCOVER_S)
        self._discover_at = now + self._discover_every

    # -- rings ----------------------------------------------------------------------------
    def ring(self, database: str) -> None:
        """A service staged events in `database` (`kit.doorbell`; any thread)."""
        with self._rung_lock:
            self._rung.add(database)
        self.wake.set()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def _answer_rings(self) -> None:
        """Make the rung databases' quiet sources due now, or 50 ms after their last poll
        (none while one of them is busy: a poll that soon would split its batch), and list
        the collections now for a database with no source known yet."""
        with self._rung_lock:
            rung, self._rung = self._rung, set()
        if not rung:
            return
        now = self.monotonic()
        by_db: dict[str, list[Source]] = defaultdict(list)
        for source in self._sources.values():
            by_db[source.coll.database.name].append(source)
        for database in rung:
            sources = by_db.get(database)
            if not sources:
                if database.startswith(f"{self.settings.db_prefix}_"):
                    self._discover_at = now
                continue
            if any(source.busy for source in sources):
                continue
            for source in sources:  # no sooner than a busy source's next poll would be
                due = max(now, source.polled_at + POLL_MIN_S)
                if due < source.due:
                    source.due, source.wait = due, POLL_MIN_S / 2

    def _sleep(self, seconds: float) -> None:
        """Until the next round is due, a ring comes or the relay is stopped."""
        self.wake.wait(seconds)
        self.wake.clear()
        self._answer_rings()

    # -- leasing ------------------------------------------------------------------------
    def _lease_one(self, coll: Collection, token: str,
                   only: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One command: lease any free document (or `only` that one) and read it."""
        doc = coll.find_one_and_update(
            {**(only or {}), **_free(clock.stamp())},
            {"$set": {"outbox_lease": clock.later(LEASE_S), "outbox_owner": token}},
            return_document=ReturnDocument.AFTER)
        return [] if doc is None else [doc]

    def _lease_batch(self, coll: Collection, token: str) -> tuple[list[dict[str, Any]], bool]:
        """Lease up to BATCH free documents: find, lease by token, read back (three
        commands; two for a single one). Also says whether the batch was full."""
        ids = [d["_id"] for d in coll.find(_free(clock.stamp()), {"_id": 1}).limit(BATCH)]
        if len(ids) <= 1:
            return (self._lease_one(coll, token, {"_id": ids[0]}) if ids else []), False
        leased = coll.update_many(
            {"_id": {"$in": ids}, **_free(clock.stamp())},
            {"$set": {"outbox_lease": clock.later(LEASE_S), "outbox_owner": token}})
        if not leased.modified_count:
            return [], False  # another relay was faster
        # read back by the token: only what this relay won, as it is now that it is leased
        docs = list(coll.find({"_id": {"$in": ids}, "outbox_owner": token}))
        return docs, len(ids) == BATCH

    # -- publishing and marking ---------------------------------------------------------
    def _publish(self, coll: Collection, doc: dict[str, Any], deadline: float,
                 published: list[str]) -> None:
        """Publish one document's entries in key order, appending each confirmed key."""
        for key, envelope in pending(doc):
            if self.monotonic() > deadline:
                # a slow broker ate the lease: leave the rest for the next lease
                log.warning("lease running out; events left for later",
                            extra={"doc": f"{coll.full_name}/{doc['_id']}"})
                return
            routed = self.publisher.publish(envelope)
            if self.fault == "kill_after_publish":
                os.kill(os.getpid(), signal.SIGKILL)
            if not routed:
                log.info("no subscriber for %s", envelope["type"],
                         extra={"event_id": envelope["event_id"]})
            published.append(key)

    def _mark(self, coll: Collection, token: str, published: dict[Any, list[str]]) -> None:
        """Remove the confirmed entries and give the leases back: one `update_many` per
        group of documents that published as many entries (usually one group), in chunks
        of UNSET_PATHS keys. A lease lost meanwhile is not touched: its new owner
        republishes, and consumers skip the repeat."""
        by_count: dict[int, list[Any]] = defaultdict(list)
        for doc_id, keys in published.items():
            by_count[len(keys)].append(doc_id)
        release = {"outbox_lease": "", "outbox_owner": ""}
        for count, ids in by_count.items():
            if count > UNSET_PATHS:  # a long outbox: its keys in parts, released with the last
                for doc_id in ids:
                    keys = published[doc_id]
                    for start in range(0, len(keys), UNSET_PATHS):
                        part = keys[start:start + UNSET_PATHS]
                        update = mark_sent_update(part)
                        if start + UNSET_PATHS >= len(keys):
                            update["$unset"].update(release)
                        coll.update_one({"_id": doc_id, "outbox_owner": token}, update)
                continue
            per_update = UNSET_PATHS // max(count, 1)
            for start in range(0, len(ids), per_update):
                chunk = ids[start:start + per_update]
                keys = [key for doc_id in chunk for key in published[doc_id]]
                update = mark_sent_update(keys, per_document=count) or {}
                update.setdefault("$unset", {}).update(release)
                coll.update_many({"_id": {"$in": chunk}, "outbox_owner": token}, update)

    # -- polling ------------------------------------------------------------------------
    def _poll(self, source: Source, batch: bool) -> int:
        """Lease, publish, mark; events sent. A document that fails to publish keeps its
        unconfirmed entries for later and the others go on; the first failure is raised
        after the marks."""
        coll, token = source.coll, f"{self.owner}:{next(self._tokens)}"
        full = False
        if batch:
            docs, full = self._lease_batch(coll, token)
        else:
            docs = self._lease_one(coll, token)
        self._schedule(source, worked=bool(docs), full=full)
        if not docs:
            return 0
        deadline = self.monotonic() + LEASE_S - LEASE_MARGIN_S
        published: dict[Any, list[str]] = {}
        failure: Exception | None = None
        try:
            for doc in docs:  # a stop waits for the batch: the lease bounds it
                published[doc["_id"]] = keys = []
                try:
                    self._publish(coll, doc, deadline, keys)
                except Exception as exc:  # noqa: BLE001 - raised after the marks
                    failure = failure or exc
        finally:
            self._mark(coll, token, published)
        for doc_id, keys in published.items():
            if keys:
                log.debug("relayed %d event(s)", len(keys),
                          extra={"doc": f"{coll.full_name}/{doc_id}"})
        if failure is not None:
            raise failure
        return sum(len(keys) for keys in published.values())

    def _schedule(self, source: Source, worked: bool, full: bool) -> None:
        now = self.monotonic()
        source.busy, source.polled_at = worked, now
        if worked:
            source.wait, source.warm_until = POLL_MIN_S, now + WARM_S
            source.due = now if full else now + POLL_MIN_S
            return
        cap = POLL_WARM_S if now < source.warm_until else POLL_COLD_S
        if self.settings.relay_idle_poll_s is not None:  # KEPU_RELAY_IDLE_POLL_S
            cap = self.settings.relay_idle_poll_s
        source.wait = min(source.wait * 2, cap)
        source.due = now + source.wait

    def _poll_all(self, sources: list[Source], batch: bool | None) -> int:
        """Poll `sources` at once; each leases a batch if `batch`, else if it was busy."""
        futures = [self._pool.submit(self._poll_unless_stopping, source,
                                     source.busy if batch is None else batch)
                   for source in sources]
        wait(futures)  # every document marked or released before the next round
        return sum(future.result() for future in futures)

    def _poll_unless_stopping(self, source: Source, batch: bool) -> int:
        return 0 if self.stopping.is_set() else self._poll(source, batch)

    def relay_once(self) -> int:
        """Every source, now, a batch each; raises the first failure after all settle."""
        self._discover_if_due()
        return self._poll_all(list(self._sources.values()), batch=True)

    def tick(self) -> int:
        """One round: the sources that are due; raises the first failure after all settle."""
        self._discover_if_due()
        now = self.monotonic()
        return self._poll_all([s for s in self._sources.values() if s.due <= now], batch=None)

    def next_wait(self) -> float:
        """Seconds until a source or the next listing is due; at most one (the heartbeat)."""
        listing = self._discover_at if self._discover_at is not None else 0.0
        due = min([listing, *(s.due for s in self._sources.values())])
        return min(max(0.0, due - self.monotonic()), 1.0)

    def _drain(self) -> None:
        """A last pass over every source when stopped, so that what was written in the
        last poll's wait does not wait for the next relay (a deploy, a restart)."""
        until = self.monotonic() + LEASE_S - LEASE_MARGIN_S
        try:
            self._discover_if_due()
        except Exception as exc:  # noqa: BLE001 - stopping anyway
            log.warning("not drained on stop: %s", exc)
            return
        for source in list(self._sources.values()):
            if self.monotonic() > until:
                return
            try:
                self._poll(source, batch=True)
            except Exception as exc:  # noqa: BLE001 - stopping anyway; a relay retries
                log.warning("not drained on stop: %s", exc)
                return

    def run(self) -> None:
        """Round after round until stopped; a failed round is retried after a second."""
        log.info("relay started", extra={"owner": self.owner})
        beat = os.environ.get("KEPU_HEARTBEAT_FILE")  # a container liveness probe reads its age
        while not self.stopping.is_set():
            if beat:
                Path(beat).touch()
            try:
                self.tick()
                self.publisher.heartbeat()
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.warning("broker unavailable, retrying: %s", exc)
                self.publisher.close()
                self.stopping.wait(1.0)
            except Exception:
                log.exception("relay round failed; retrying")
                self.stopping.wait(1.0)
            self._sleep(self.next_wait())
        self._pool.shutdown(wait=True)
        self._drain()
        self.publisher.close()
        self.client.close()
        log.info("relay stopped")


def main() -> None:
    settings = Settings.from_env()
    logs.configure("relay", settings.log_level)
    logging.getLogger("pika").setLevel(logging.ERROR)  # returned (unrouted) events are logged here
    relay = Relay(settings)
    listener = doorbell.Listener(settings.amqp_url, relay.ring, relay.stopping)

    def stop(signum: int, frame: Any) -> None:
        relay.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener.start()
    relay.run()
    listener.join(timeout=doorbell.RETRY_S * 2)


if __name__ == "__main__":
    main()
