"""The outbox relay: publishes unsent outbox entries with publisher confirms, then marks them.

A separate process (`python -m services.kit.relay`). It finds outbox-bearing collections by
their `outbox_pending` index, leases each document (so several relays can run), publishes
that document's entries in key order, and removes each entry only after the broker
confirmed it. Documents are relayed by a few threads at once: each document (one
aggregate) stays on one thread, so order per aggregate holds, while the database round
trips of different documents overlap — one at a time, a busy database made the relay the
slowest link of a claim burst. A relay that dies between publish and mark publishes again on
restart; consumers skip the repeat by event id. Unroutable events (no queue bound: nobody
subscribes to that type) are confirmed by the broker and counted as sent.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
from pymongo import MongoClient
from pymongo.collection import Collection

from services.kit import broker, clock, logs
from services.kit.config import Settings
from services.kit.envelope import routing
from services.kit.mongo import OUTBOX_INDEX, connect
from services.kit.outbox import PENDING_FIELD, mark_sent_update, pending

log = logging.getLogger("kepu.relay")

LEASE_S = 15
# A relay stops publishing a document's entries once this little of its lease is left: past
# the lease another relay may take the document, and two relays publishing one aggregate's
# events at once would still be harmless (consumers skip repeats) but no longer in order.
LEASE_MARGIN_S = 5
BATCH = 100


class Publisher:
    """One pika connection with confirms; reconnects after any broker failure.

    pika's BlockingConnection is not thread-safe: the relay's threads take turns on it.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._declared: set[str] = set()
        self._turn = threading.RLock()

    def _open(self) -> Any:
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(broker.parameters(self.settings.amqp_url))
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
            self._declared.clear()
        return self._channel

    def publish(self, envelope: dict[str, Any]) -> bool:
        """Publish and wait for the broker's confirm. False if nobody was subscribed."""
        with self._turn:
            return self._publish(envelope)

    def _publish(self, envelope: dict[str, Any]) -> bool:
        channel = self._open()
        producer, name = routing(envelope["type"])
        exchange = broker.events_exchange(producer)
        if exchange not in self._declared:
            broker.declare_events_exchange(channel, producer)
            self._declared.add(exchange)
        headers = {}
        if envelope.get("correlation_id"):
            headers[broker.CORRELATION_HEADER] = envelope["correlation_id"]
        try:
            channel.basic_publish(
                exchange=exchange,
                routing_key=name,
                body=json.dumps(envelope, ensure_ascii=False).encode(),
                properties=pika.BasicProperties(
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=envelope["event_id"],
                    type=envelope["type"],
                    headers=headers,
                ),
                mandatory=True,
            )
        except pika.exceptions.UnroutableError:
            return False
        return True

    def heartbeat(self) -> None:
        with self._turn:
            if self._connection is not None and self._connection.is_open:
                self._connection.process_data_events(0)

    def close(self) -> None:
        with self._turn:
            try:
                if self._connection is not None and self._connection.is_open:
                    self._connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._connection = None
            self._channel = None


class Relay:
    def __init__(self, settings: Settings, client: MongoClient | None = None,
                 publisher: Publisher | None = None) -> None:
        self.settings = settings
        self.client = client or connect(settings, "relay")
        self.publisher = publisher or Publisher(settings)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._sources: list[Collection] = []
        self._sources_at = 0.0
        self.stopping = threading.Event()
        self.fault = os.environ.get("KEPU_RELAY_FAULT", "")
        self._pool = ThreadPoolExecutor(settings.relay_workers, thread_name_prefix="relay")
        self.monotonic = time.monotonic  # a test may stand in a clock of its own

    # -- finding work -------------------------------------------------------------------
    def sources(self) -> list[Collection]:
        """Collections with an outbox index, in every database of this deployment."""
        now = time.monotonic()
        if now - self._sources_at < 5 and self._sources:
            return self._sources
        found = []
        prefix = f"{self.settings.db_prefix}_"
        for db_name in self.client.list_database_names():
            if not db_name.startswith(prefix):
                continue
            db = self.client[db_name]
            for coll_name in db.list_collection_names():
                info = db[coll_name].index_information()
                if any(spec["key"][0][0] == OUTBOX_INDEX for spec in info.values()):
                    found.append(db[coll_name])
        self._sources, self._sources_at = found, now
        return found

    def _lease(self, coll: Collection, doc_id: Any) -> dict[str, Any] | None:
        now = clock.stamp()
        return coll.find_one_and_update(
            {"_id": doc_id, PENDING_FIELD: {"$gt": 0},
             "$or": [{"outbox_lease": {"$exists": False}}, {"outbox_lease": {"$lt": now}}]},
            {"$set": {"outbox_lease": clock.later(LEASE_S), "outbox_owner": self.owner}},
            return_document=True,
        )

    # -- publishing ---------------------------------------------------------------------
    def relay_document(self, coll: Collection, doc_id: Any) -> int:
        """Publish one document's entries in order; stops at the first failure."""
        doc = self._lease(coll, doc_id)
        if doc is None:
            return 0
        leased_until = self.monotonic() + LEASE_S - LEASE_MARGIN_S
        entries = pending(doc)
        published: list[str] = []
        try:
            for key, envelope in entries:
                if published and self.monotonic() > leased_until:
                    # a slow broker ate the lease: leave the rest for the next lease
                    log.warning("lease running out; %d event(s) left for later",
                                len(entries) - len(published),
                                extra={"doc": f"{coll.full_name}/{doc_id}"})
                    break
                routed = self.publisher.publish(envelope)
                if self.fault == "kill_after_publish":
                    os.kill(os.getpid(), signal.SIGKILL)
                if not routed:
                    log.info("no subscriber for %s", envelope["type"],
                             extra={"event_id": envelope["event_id"]})
                published.append(key)
        finally:
            # One write marks every confirmed entry sent and gives the lease back; if the
            # lease was lost meanwhile, the new owner republishes (consumers skip repeats).
            update = mark_sent_update(published)
            update.setdefault("$unset", {}).update({"outbox_lease": "", "outbox_owner": ""})
            coll.update_one({"_id": doc_id, "outbox_owner": self.owner}, update)
        sent = len(published)
        if sent:
            log.debug("relayed %d event(s)", sent, extra={"doc": f"{coll.full_name}/{doc_id}"})
        return sent

    def relay_once(self) -> int:
        """One pass over every source; raises the first failure after the pass settles."""
        sent = 0
        for coll in self.sources():
            if self.stopping.is_set():
                return sent
            waiting = coll.find({PENDING_FIELD: {"$gt": 0}}, {"_id": 1}).limit(BATCH)
            ids = [d["_id"] for d in waiting]
            futures = [self._pool.submit(self._relay_unless_stopping, coll, doc_id)
                       for doc_id in ids]
            wait(futures)  # every document marked or released before the next pass
            for future in futures:
                sent += future.result()
        return sent

    def _relay_unless_stopping(self, coll: Collection, doc_id: Any) -> int:
        return 0 if self.stopping.is_set() else self.relay_document(coll, doc_id)

    def run(self) -> None:
        """Poll, fast while there is work and backing off to 250 ms when idle."""
        idle = 0.02
        log.info("relay started", extra={"owner": self.owner})
        beat = os.environ.get("KEPU_HEARTBEAT_FILE")  # a container liveness probe reads its age
        while not self.stopping.is_set():
            if beat:
                Path(beat).touch()
            try:
                sent = self.relay_once()
                self.publisher.heartbeat()
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.warning("broker unavailable, retrying: %s", exc)
                self.publisher.close()
                sent = 0
                self.stopping.wait(1.0)
            except Exception:
                log.exception("relay pass failed; retrying")
                sent = 0
                self.stopping.wait(1.0)
            idle = 0.01 if sent else min(idle * 2, 0.25)
            self.stopping.wait(idle)
        self._pool.shutdown(wait=True)
        self.publisher.close()
        self.client.close()
        log.info("relay stopped")


def main() -> None:
    settings = Settings.from_env()
    logs.configure("relay", settings.log_level)
    logging.getLogger("pika").setLevel(logging.ERROR)  # returned (unrouted) events are logged here
    relay = Relay(settings)

    def stop(signum: int, frame: Any) -> None:
        relay.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    relay.run()


if __name__ == "__main__":
    main()
