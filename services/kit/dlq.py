"""The dead-letter queue, seen from outside: list parked events and replay them.

Listing takes messages without acking and closes the channel, so the broker puts every one
back. Replaying publishes the event (attempt counter reset) to the handler queue it was
parked from, waits for the broker's confirm, and only then acks it out of the DLQ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pika

from services.kit import broker


@dataclass
class Parked:
    event_id: str | None
    event_type: str | None
    queue: str | None
    attempts: int
    error: str
    parked_at: str | None
    body: Any

    def as_dict(self, with_data: bool = False) -> dict[str, Any]:
        out = {"event_id": self.event_id, "type": self.event_type, "queue": self.queue,
               "attempts": self.attempts, "error": self.error, "parked_at": self.parked_at}
        if with_data:
            out["data"] = self.body.get("data") if isinstance(self.body, dict) else self.body
        return out


def _parked(props: Any, body: bytes) -> Parked:
    headers = props.headers or {}
    try:
        decoded = json.loads(body)
    except ValueError:
        decoded = body.decode("utf-8", "replace")
    return Parked(
        event_id=props.message_id,
        event_type=headers.get(broker.EVENT_TYPE_HEADER),
        queue=headers.get(broker.QUEUE_HEADER),
        attempts=int(headers.get(broker.ATTEMPTS_HEADER, 0)),
        error=str(headers.get(broker.ERROR_HEADER, "")),
        parked_at=headers.get(broker.PARKED_AT_HEADER),
        body=decoded,
    )


def _drain(channel: Any, limit: int) -> list[tuple[Any, Any, bytes]]:
    taken = []
    while len(taken) < limit:
        method, props, body = channel.basic_get(broker.DEAD_LETTERS, auto_ack=False)
        if method is None:
            break
        taken.append((method, props, body))
    return taken


def list_parked(amqp_url: str, limit: int = 1000, quorum: bool = False) -> list[Parked]:
    connection = pika.BlockingConnection(broker.parameters(amqp_url))
    try:
        channel = connection.channel()
        broker.declare_dead_letters(channel, quorum)
        return [_parked(props, body) for _, props, body in _drain(channel, limit)]
    finally:
        connection.close()  # unacked messages return to the queue


def replay(amqp_url: str, event_id: str | None = None, limit: int = 10_000,
           quorum: bool = False) -> list[Parked]:
    """Send parked events (one by id, or all when `event_id` is None) back to their queues."""
    connection = pika.BlockingConnection(broker.parameters(amqp_url))
    replayed: list[Parked] = []
    try:
        channel = connection.channel()
        broker.declare_dead_letters(channel, quorum)
        channel.confirm_delivery()
        for method, props, body in _drain(channel, limit):
            parked = _parked(props, body)
            if (event_id is not None and parked.event_id != event_id) or not parked.queue:
                continue
            headers = {k: v for k, v in (props.headers or {}).items()
                       if not k.startswith("x-kepu-") and k != "x-death"}
            headers["x-kepu-replayed"] = True
            channel.basic_publish(
                exchange="", routing_key=parked.queue, body=body, mandatory=True,
                properties=pika.BasicProperties(
                    content_type=props.content_type or "application/json",
                    content_encoding=props.content_encoding, delivery_mode=2,
                    message_id=props.message_id, headers=headers),
            )
            channel.basic_ack(method.delivery_tag)
            replayed.append(parked)
    finally:
        connection.close()
    return replayed
