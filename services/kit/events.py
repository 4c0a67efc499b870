"""Event handlers that apply each event once and never drop one silently.

    class Booking:
        @subscribe("venues.venue_registered")
        def on_venue_registered(self, event): ...

`subscribe` binds a durable queue to the producer's events exchange (nameko naming), then:
- checks the envelope against `contracts` — a malformed event is parked at once;
- records the event id in the service's `applied_events` collection (unique `_id` of
  handler and event id) and skips an event already applied; a record expires after
  `Ledger.KEEP` (30 days, a TTL index on `expires_at`), far longer than the retry
  schedule (minutes) and than an event waits in the dead-letter queue for a replay;
- on failure, republishes the event to `<queue>.retry` with a growing delay (the retry
  queue dead-letters it back after its TTL), and after the last attempt parks it in
  `kepu.dead-letters` with the error, where `kepu dlq` shows and replays it.
The original delivery is acked only after its retry or parking was confirmed by the
broker, so a crash at any point leaves the event in some queue.
"""

from __future__ import annotations

import functools
import logging
import traceback
from datetime import timedelta
from typing import Any

from kombu import Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.events import EventHandler
from pymongo.errors import DuplicateKeyError

from services.kit import broker, clock
from services.kit.config import Settings
from services.kit.envelope import routing
from services.kit.logs import correlation_id
from services.kit.mongo import MongoConnection
from services.kit.registry import ContractViolation, latest_version, validate_envelope

log = logging.getLogger("kepu.events")

LEASE_S = 60
APPLIED = "applied_events"


class EventInFlight(Exception):
    """Another worker is applying the same event right now; try again later."""


class Ledger:
    """Which events a handler has applied: one document per (handler, event id)."""

    KEEP = timedelta(days=30)

    def __init__(self, collection: Any) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        """Applied records expire on their own (a TTL index; nx-27017 accepts it too)."""
        self.collection.create_index("expires_at", expireAfterSeconds=0)

    def begin(self, handler: str, event_id: str) -> bool:
        """True if this worker should apply the event, False if it was applied before."""
        key = f"{handler}:{event_id}"
        now = clock.stamp()
        try:
            self.collection.insert_one({"_id": key, "handler": handler, "event_id": event_id,
                                        "state": "applying", "lease_until": clock.later(LEASE_S),
                                        "started_at": now,
                                        "expires_at": clock.expiry(self.KEEP)})
            return True
        except DuplicateKeyError:
            pass
        taken = self.collection.find_one_and_update(
            {"_id": key, "state": "applying", "lease_until": {"$lt": now}},
            {"$set": {"lease_until": clock.later(LEASE_S), "started_at": now}},
        )
        if taken is not None:
            return True  # the previous worker died mid-way; its lease ran out
        done = self.collection.find_one_and_update(
            {"_id": key, "state": "applied"}, {"$inc": {"repeats": 1}})
        if done is not None:
            return False
        raise EventInFlight(key)

    def finish(self, handler: str, event_id: str) -> None:
        self.collection.update_one({"_id": f"{handler}:{event_id}"},
                                   {"$set": {"state": "applied",
                                             "applied_at": clock.stamp()},
                                    "$unset": {"lease_until": ""}})

    def abandon(self, handler: str, event_id: str) -> None:
        self.collection.delete_one({"_id": f"{handler}:{event_id}", "state": "applying"})


class Delivery:
    """What the idempotent wrapper needs to know about one delivery."""

    def __init__(self, ledger: Ledger, handler: str, envelope: dict[str, Any]) -> None:
        self.ledger = ledger
        self.handler = handler
        self.envelope = envelope
        self.skipped = False


class EventSubscriber(EventHandler):
    """A nameko event handler with contract checks, retries with backoff and parking."""

    mongo = MongoConnection()

    def __init__(self, event_type: str, **kwargs: Any) -> None:
        source, name = routing(event_type)
        self.full_type = event_type
        super().__init__(source, name, **kwargs)

    @property
    def settings(self) -> Settings:
        return self.container.config["KEPU_SETTINGS"]

    @property
    def handler_key(self) -> str:
        return f"{self.container.service_name}.{self.method_name}"

    def setup(self) -> None:
        # Fail at start, not by parking every event, when the process never imported the
        # contracts (kit does not import them: `import services.contracts` registers them).
        try:
            latest_version(self.full_type)
        except ContractViolation:
            raise ContractViolation(f"{self.full_type} is not a registered event type; "
                                    "import services.contracts in the service") from None
        super().setup()
        quorum = self.settings.quorum_queues
        if quorum:
            self.queue.queue_arguments = {**(self.queue.queue_arguments or {}),
                                          "x-queue-type": "quorum"}
        self.retry_queue = Queue(
            broker.retry_queue(self.queue.name), exchange=Exchange(""),
            routing_key=broker.retry_queue(self.queue.name), durable=True,
            queue_arguments=broker.retry_queue_arguments(self.queue.name, quorum),
        )
        self.dead_letters = Queue(broker.DEAD_LETTERS, exchange=Exchange(""),
                                  routing_key=broker.DEAD_LETTERS, durable=True,
                                  queue_arguments=broker.dead_letter_arguments(quorum))
        self.publisher = Publisher(self.settings.amqp_url, use_confirms=True,
                                   declare=[self.retry_queue, self.dead_letters])
        self.ledger = Ledger(self.mongo.database[APPLIED])
        self.ledger.ensure_indexes()

    def handle_message(self, body: Any, message: Any) -> None:
        try:
            envelope = validate_envelope(body)
            if envelope["type"] != self.full_type:
                raise ContractViolation(f"expected {self.full_type}, got {envelope['type']}")
        except ContractViolation as exc:
            log.error("unprocessable event parked: %s", exc)
            self._park(body, message, f"ContractViolation: {exc}", attempts=1)
            return
        delivery = Delivery(self.ledger, self.handler_key, envelope)
        self._spawn(message, delivery)

    def _spawn(self, message: Any, delivery: Delivery) -> None:
        from functools import partial

        from nameko.exceptions import ContainerBeingKilled

        context_data = self.unpack_message_headers(message)
        if delivery.envelope.get("correlation_id"):
            context_data.setdefault("correlation_id", delivery.envelope["correlation_id"])
        try:
            self.container.spawn_worker(self, (delivery.envelope,), {"_delivery": delivery},
                                        context_data=context_data,
                                        handle_result=partial(self.handle_result, message))
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_result(self, message: Any, worker_ctx: Any, result: Any = None,
                      exc_info: Any = None) -> Any:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return result, exc_info
        attempts = int((message.headers or {}).get(broker.ATTEMPTS_HEADER, 0)) + 1
        error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
        body = worker_ctx.args[0]
        try:
            if attempts < self.settings.max_attempts and not isinstance(exc_info[1],
                                                                        ContractViolation):
                delay = self.settings.retry_delays_ms[attempts - 1]
                log.warning("handler %s failed (attempt %d), retry in %d ms: %s",
                            self.handler_key, attempts, delay, error)
                self.publisher.publish(
                    body, exchange=Exchange(""), routing_key=self.retry_queue.name,
                    expiration=delay / 1000, headers=self._headers(message, attempts),
                    message_id=body.get("event_id"))
            else:
                self._publish_parked(body, message, error, attempts)
        except Exception:
            log.exception("could not schedule a retry; the event goes back to its queue")
            self.queue_consumer.requeue_message(message)
            return result, exc_info
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def _headers(self, message: Any, attempts: int) -> dict[str, Any]:
        headers = {k: v for k, v in (message.headers or {}).items() if k != "x-death"}
        headers[broker.ATTEMPTS_HEADER] = attempts
        return headers

    def _publish_parked(self, body: Any, message: Any, error: str, attempts: int) -> None:
        log.error("handler %s gave up after %d attempts; event parked: %s",
                  self.handler_key, attempts, error)
        headers = self._headers(message, attempts)
        headers.update({
            broker.QUEUE_HEADER: self.queue.name,
            broker.ERROR_HEADER: error[:2000],
            broker.PARKED_AT_HEADER: clock.stamp(),
            broker.EVENT_TYPE_HEADER: self.full_type,
        })
        self.publisher.publish(body, exchange=Exchange(""), routing_key=broker.DEAD_LETTERS,
                               headers=headers,
                               message_id=body.get("event_id") if isinstance(body, dict) else None)

    def _park(self, body: Any, message: Any, error: str, attempts: int) -> None:
        try:
            self._publish_parked(body, message, error, attempts)
        except Exception:
            log.exception("could not park an unprocessable event; requeueing it")
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)


def _applied_once(fn: Any) -> Any:
    @functools.wraps(fn)
    def apply(self: Any, event: dict[str, Any], _delivery: Delivery) -> Any:
        ledger, handler = _delivery.ledger, _delivery.handler
        event_id = event["event_id"]
        correlation_id.set(event.get("correlation_id") or correlation_id.get())
        if not ledger.begin(handler, event_id):
            log.info("event %s already applied by %s; skipped", event_id, handler)
            _delivery.skipped = True
            return None
        try:
            result = fn(self, event)
        except BaseException:
            ledger.abandon(handler, event_id)
            raise
        ledger.finish(handler, event_id)
        return result

    return apply


def _self_idempotent(fn: Any) -> Any:
    @functools.wraps(fn)
    def apply(self: Any, event: dict[str, Any], _delivery: Delivery) -> Any:
        correlation_id.set(event.get("correlation_id") or correlation_id.get())
        return fn(self, event)

    return apply


def subscribe(event_type: str, *, ledger: bool = True, **kwargs: Any) -> Any:
    """Decorate a service method as the idempotent, retried handler of `event_type`.

    `ledger=False` is for a handler whose own writes are keyed by the event id (an insert
    whose `_id` derives from it, an update conditional on it), so a repeat changes nothing
    by construction: it saves the ledger's two writes per event. Such a handler must be
    safe to run twice at once and to re-run after a crash mid-way.
    """

    def decorate(fn: Any) -> Any:
        wrap = _applied_once if ledger else _self_idempotent
        return EventSubscriber.decorator(event_type, **kwargs)(wrap(fn))

    return decorate
