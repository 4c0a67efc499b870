"""The outbox relay: publishes unsent outbox entries with publisher confirms, then marks them.

A separate process (`python -m services.kit.relay`). It finds outbox-bearing collections by
their `outbox_pending` index, leases one document at a time (so several relays can run),
publishes that document's entries in key order, and removes each entry only after the
broker confirmed it. A relay that dies between publish and mark publishes again on
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
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
from pymongo import MongoClient
from pymongo.collection import Collection

from services.contracts.envelope import routing
from services.kit import broker, clock, logs
from services.kit.config import Settings
from services.kit.mongo import OUTBOX_INDEX, connect
from services.kit.outbox import PENDING_FIELD, mark_sent_update, pending

log = logging.getLogger("kepu.relay")

LEASE_S = 15
BATCH = 100


class Publisher:
    """One pika connection with confirms; reconnects after any broker failure."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._declared: set[str] = set()

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
        if self._connection is not None and self._connection.is_open:
            self._connection.process_data_events(0)

    def close(self) -> None:
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
        published: list[str] = []
        try:
            for key, envelope in pending(doc):
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
        sent = 0
        for coll in self.sources():
            waiting = coll.find({PENDING_FIELD: {"$gt": 0}}, {"_id": 1}).limit(BATCH)
            ids = [d["_id"] for d in waiting]
            for doc_id in ids:
                if self.stopping.is_set():
                    return sent
                sent += self.relay_document(coll, doc_id)
        return sent

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
