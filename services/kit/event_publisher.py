"""The relay's side of the broker: publish one event envelope and wait for its confirm.

One pika connection with publisher confirms, to the producer's events exchange (declared
once per connection), `mandatory` so an event nobody subscribes to is told apart; used by
the relay (`kit.relay`) and by tests that stand in for a producer.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pika
import pika.exceptions

from services.kit import broker
from services.kit.config import Settings
from services.kit.envelope import routing


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
