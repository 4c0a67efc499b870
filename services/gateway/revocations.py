"""Each gateway process listens for revocations: `identity.user_cutoff` and
`identity.api_key_revoked`, on an exclusive, auto-delete queue of its own bound to the
identity events exchange (every process must hear every event; nothing is kept for a
process that is gone).

A background thread consumes; when the broker drops, it reconnects with backoff, and on
every (re)connect it reloads `identity.recent_cutoffs()` after binding, so a cut-off
published while it was away is never missed (cut-offs are idempotent: the latest wins).
Any cached API key is dropped on reconnect for the same reason.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import pika

from services.gateway.principals import Cutoffs, KeyCache
from services.kit import broker

log = logging.getLogger("kepu.gateway.revocations")

ROUTING_KEYS = ("user_cutoff", "api_key_revoked")


def apply(envelope: dict[str, Any], cutoffs: Cutoffs, keys: KeyCache) -> None:
    """One event, applied to the in-memory state."""
    data = envelope.get("data") or {}
    kind = envelope.get("type")
    if kind == "identity.user_cutoff":
        cutoffs.add(str(data["user_id"]), int(data["not_before_epoch"]))
    elif kind == "identity.api_key_revoked":
        keys.drop(str(data["api_key_id"]))


class Listener:
    def __init__(self, amqp_url: str, cutoffs: Cutoffs, keys: KeyCache,
                 load_recent: Callable[[], list[dict[str, Any]]]) -> None:
        self.amqp_url = amqp_url
        self.cutoffs = cutoffs
        self.keys = keys
        self.load_recent = load_recent
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._connection: Any = None
        self._thread = threading.Thread(target=self._run, name="revocations", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        connection = self._connection
        if connection is not None:
            try:
                connection.add_callback_threadsafe(connection.close)
            except Exception:  # noqa: BLE001 - closing on the way out
                pass

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._consume()
                delay = 0.5
            except Exception as exc:  # noqa: BLE001 - any broker trouble: reconnect
                self.connected.clear()
                if self._stop.is_set():
                    return
                log.warning("revocation listener lost the broker; reconnecting",
                            extra={"error": str(exc)[:200], "retry_in_s": delay})
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _consume(self) -> None:
        connection = pika.BlockingConnection(broker.parameters(self.amqp_url))
        self._connection = connection
        try:
            channel = connection.channel()
            broker.declare_events_exchange(channel, "identity")
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            for key in ROUTING_KEYS:
                channel.queue_bind(queue, broker.events_exchange("identity"), routing_key=key)
            self._reload()
            self.connected.set()
            for _method, _props, body in channel.consume(queue, auto_ack=True,
                                                         inactivity_timeout=1.0):
                if self._stop.is_set():
                    return
                if body is not None:
                    self._handle(body)
        finally:
            self._connection = None
            if connection.is_open:
                connection.close()

    def _reload(self) -> None:
        """Bound first, then loaded: nothing published in between is lost."""
        self.keys.clear()
        for _ in range(30):
            try:
                for row in self.load_recent():
                    self.cutoffs.add(row["user_id"], int(row["not_before_epoch"]))
                return
            except Exception as exc:  # noqa: BLE001 - identity may still be starting
                log.warning("could not load recent cut-offs yet", extra={"error": str(exc)[:200]})
                if self._stop.wait(1.0):
                    return
        raise RuntimeError("identity.recent_cutoffs did not answer")

    def _handle(self, body: bytes) -> None:
        try:
            apply(json.loads(body), self.cutoffs, self.keys)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("unreadable revocation event", extra={"error": str(exc)[:200]})

