"""The relays' doorbell: an outbox just written to is polled now, not after a backoff.

A relay polls a quiet outbox at most once a second (`kit.relay`), so the first event after
a quiet spell waited up to that second, and at a holiday burst the first second's
confirmations queued behind it for the e-mails of the seconds after (docs/performance.md,
"A fifth sitting"). So a service rings after a worker that staged events: a transient
message on the `kepu.outbox` fanout exchange naming the service's database. Every relay
listens on a queue of its own and polls that database's outboxes at once.

A ring is a hint, never an event: the outbox stays the only record, and a ring lost, late
or never sent costs what it cost before, the poll's wait. It is sent after the worker's
writes (nameko's `worker_result`, `kit.mongo.Store`), so the poll it brings finds them. A
process rings at most every RING_EVERY_S: a burst's workers do not each add a message, and
what a worker writes inside that interval is found by the polls the last ring started (a
relay that found work polls again within 50 ms, then backs off by doubling).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pika
import pika.exceptions
from kombu import Exchange
from nameko.amqp.publish import DEFAULT_TRANSPORT_OPTIONS

from services.kit import broker, outbox
from services.kit.publish import producer_pool

log = logging.getLogger("kepu.doorbell")

EXCHANGE = "kepu.outbox"
RING_EVERY_S = 0.25
QUEUE_LENGTH = 100  # rings a relay keeps unread at most; older ones are dropped (x-max-length)
RETRY_S = 1.0  # a listener that lost the broker connects again after this
QUIET_AFTER_FAILURE_S = 5.0  # a bell that could not ring waits this long before trying again
# one connection attempt, no retry: a ring is not worth holding a worker while the broker is away
TRANSPORT = {**DEFAULT_TRANSPORT_OPTIONS, "max_retries": 0}


class Bell:
    """A service process's bell: rings after a worker when events were staged since the
    last ring, at most every RING_EVERY_S."""

    def __init__(self, amqp_uri: str, database: str) -> None:
        self.database = database
        self._exchange = Exchange(EXCHANGE, type="fanout", durable=True)
        self._pool = producer_pool(amqp_uri, confirms=False, transport_options=TRANSPORT)
        self._rung_at = float("-inf")
        self._rung_for = outbox.stagings()  # the count the last ring (or the start) saw
        self._failing = False
        self.monotonic = time.monotonic  # a test may stand in a clock of its own

    def after_work(self) -> bool:
        """Ring if something was staged since the last ring and the last is old enough;
        whether it rang. Never raises: a ring that fails leaves the relay to its polls."""
        now, staged = self.monotonic(), outbox.stagings()
        if staged == self._rung_for or now - self._rung_at < RING_EVERY_S:
            return False
        self._rung_at, self._rung_for = now, staged
        try:
            with self._pool.acquire() as producer:
                producer.publish(self.database.encode(), exchange=self._exchange,
                                 routing_key="", declare=[self._exchange], delivery_mode=1,
                                 content_type="text/plain", content_encoding="utf-8",
                                 retry=False)
        except Exception as exc:  # noqa: BLE001 - a hint; the relay polls anyway
            if not self._failing:
                log.warning("could not ring the relays (they will poll): %s", exc)
            self._failing = True
            self._rung_at = now + QUIET_AFTER_FAILURE_S - RING_EVERY_S
            return False
        self._failing = False
        return True


class Listener(threading.Thread):
    """A relay's ear: consumes rings on a queue of its own and hands each database named
    to `heard`; connects again after any broker failure, until `stopping` is set."""

    def __init__(self, amqp_url: str, heard: Callable[[str], None],
                 stopping: threading.Event) -> None:
        super().__init__(name="doorbell", daemon=True)
        self.amqp_url = amqp_url
        self.heard = heard
        self.stopping = stopping
        self.listening = threading.Event()  # set while consuming (tests wait on it)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._listen()
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.info("doorbell not heard, listening again: %s", exc)
            except Exception:  # noqa: BLE001 - a listener that stopped would go deaf for good
                log.exception("doorbell listener failed; listening again")
            finally:
                self.listening.clear()
            self.stopping.wait(RETRY_S)

    def _listen(self) -> None:
        connection = pika.BlockingConnection(broker.parameters(self.amqp_url))
        try:
            channel = connection.channel()
            channel.exchange_declare(EXCHANGE, exchange_type="fanout", durable=True)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True,
                                          arguments={"x-max-length": QUEUE_LENGTH})
            name = queue.method.queue
            channel.queue_bind(name, EXCHANGE)
            channel.basic_consume(name, self._on_ring, auto_ack=True)
            self.listening.set()
            while not self.stopping.is_set():
                connection.process_data_events(time_limit=RETRY_S)
        finally:
            if connection.is_open:
                connection.close()

    def _on_ring(self, channel: object, method: object, properties: object,
                 body: bytes) -> None:
        self.heard(body.decode("utf-8", "replace"))
