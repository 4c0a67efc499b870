"""RabbitMQ topology shared by the relay, the event handlers and the CLI.

- `<producer>.events`: the topic exchange nameko event handlers bind to (nameko's naming).
- `<handler queue>.retry`: where a failed event waits out its backoff (per-message TTL),
  then dead-letters straight back to its handler queue.
- `kepu.dead-letters`: events parked after the last attempt, with the error in headers.
- `kepu.outbox`: the relays' doorbell (`kit.doorbell`), a fanout exchange of transient
  rings that tell relays an outbox was written to; never events.
"""

from __future__ import annotations

from typing import Any

import pika

DEAD_LETTERS = "kepu.dead-letters"
ATTEMPTS_HEADER = "x-kepu-attempts"
QUEUE_HEADER = "x-kepu-queue"
ERROR_HEADER = "x-kepu-error"
PARKED_AT_HEADER = "x-kepu-parked-at"
EVENT_TYPE_HEADER = "x-kepu-event-type"
CORRELATION_HEADER = "nameko.correlation_id"


def events_exchange(producer: str) -> str:
    return f"{producer}.events"


def retry_queue(queue: str) -> str:
    return f"{queue}.retry"


def retry_queue_arguments(queue: str, quorum: bool = False) -> dict[str, Any]:
    """Quorum retry queues dead-letter at-least-once (RabbitMQ >= 3.10), which needs
    `reject-publish` overflow; classic ones dead-letter as classic queues always do."""
    args: dict[str, Any] = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue}
    if quorum:
        args.update({"x-queue-type": "quorum", "x-dead-letter-strategy": "at-least-once",
                     "x-overflow": "reject-publish"})
    return args


def dead_letter_arguments(quorum: bool) -> dict[str, Any]:
    return {"x-queue-type": "quorum"} if quorum else {}


def parameters(amqp_url: str, heartbeat: int = 30) -> pika.URLParameters:
    params = pika.URLParameters(amqp_url)
    params.heartbeat = heartbeat
    params.blocked_connection_timeout = 30
    params.connection_attempts = 3
    params.retry_delay = 1
    return params


def declare_events_exchange(channel: Any, producer: str) -> None:
    """Declared exactly as nameko declares it, so either side may come first."""
    channel.exchange_declare(events_exchange(producer), exchange_type="topic", durable=True)


def declare_dead_letters(channel: Any, quorum: bool = False) -> None:
    channel.queue_declare(DEAD_LETTERS, durable=True, arguments=dead_letter_arguments(quorum))
