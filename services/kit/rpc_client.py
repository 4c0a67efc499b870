"""A thread-safe, pooled RPC client speaking nameko's RPC protocol over pika.

The gateway runs under gunicorn's threaded workers, without eventlet. Each thread keeps
one connection with its own exclusive reply queue, reused for every call it makes, so a
request costs a publish and a reply, never a new connection. Errors raised by a service
come back as the same `services.kit.errors` class when registered, else RemoteError.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pika
import pika.exceptions
from nameko.exceptions import deserialize

from services.kit import broker
from services.kit.errors import Unavailable
from services.kit.logs import correlation_id

RPC_EXCHANGE = "nameko-rpc"


class RpcTimeout(Unavailable):
    title = "Upstream timeout"


class _NotSent(Exception):
    """The request never left this process: safe to send again on a fresh connection."""


class _Channel:
    """One connection, one channel, one reply queue: used by a single thread at a time."""

    def __init__(self, amqp_url: str) -> None:
        self.connection = pika.BlockingConnection(broker.parameters(amqp_url))
        self.channel = self.connection.channel()
        self.channel.exchange_declare(RPC_EXCHANGE, exchange_type="topic", durable=True)
        self.reply_key = uuid.uuid4().hex
        queue = f"rpc.reply-client-{self.reply_key}"
        self.channel.queue_declare(queue, exclusive=True, auto_delete=True)
        self.channel.queue_bind(queue, RPC_EXCHANGE, routing_key=self.reply_key)
        self.replies: dict[str, Any] = {}
        self.returned: set[str] = set()
        self.waiting: set[str] = set()
        self.channel.basic_consume(queue, self._on_reply, auto_ack=True)
        self.channel.add_on_return_callback(self._on_return)

    def _on_reply(self, channel: Any, method: Any, props: Any, body: bytes) -> None:
        if props.correlation_id in self.waiting:  # late replies to timed-out calls are dropped
            self.replies[props.correlation_id] = json.loads(body)

    def _on_return(self, channel: Any, method: Any, props: Any, body: bytes) -> None:
        self.returned.add(props.correlation_id)

    def call(self, service: str, method: str, args: tuple, kwargs: dict,
             timeout: float, headers: dict[str, Any]) -> Any:
        corr = uuid.uuid4().hex
        try:
            self._publish(service, method, args, kwargs, headers, corr)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise _NotSent(exc) from exc
        self.waiting.add(corr)
        try:
            return self._wait(service, method, corr, timeout)
        finally:
            self.waiting.discard(corr)
            self.returned.discard(corr)

    def _wait(self, service: str, method: str, corr: str, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while corr not in self.replies:
            if corr in self.returned:
                raise Unavailable(f"service {service!r} is not running", code="unknown-service")
            left = deadline - time.monotonic()
            if left <= 0:
                raise RpcTimeout(f"{service}.{method} did not answer within {timeout:.0f}s",
                                 code="upstream-timeout")
            self.connection.process_data_events(time_limit=min(left, 1.0))
        reply = self.replies.pop(corr)
        if reply.get("error"):
            raise deserialize(reply["error"])
        return reply.get("result")

    def _publish(self, service: str, method: str, args: tuple, kwargs: dict,
                 headers: dict[str, Any], corr: str) -> None:
        self.channel.basic_publish(
            exchange=RPC_EXCHANGE,
            routing_key=f"{service}.{method}",
            body=json.dumps({"args": list(args), "kwargs": kwargs}, ensure_ascii=False).encode(),
            properties=pika.BasicProperties(
                reply_to=self.reply_key, correlation_id=corr,
                content_type="application/json", content_encoding="utf-8",
                headers=headers, delivery_mode=1,
            ),
            mandatory=True,
        )

    def close(self) -> None:
        try:
            if self.connection.is_open:
                self.connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


class RpcClient:
    """`client.call("venues", "ping")` or `client.venues.ping()`; safe to share across threads."""

    def __init__(self, amqp_url: str, timeout: float = 30.0) -> None:
        self.amqp_url = amqp_url
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[_Channel] = []
        self._lock = threading.Lock()

    def _channel(self) -> _Channel:
        chan = getattr(self._local, "channel", None)
        if chan is None:
            chan = _Channel(self.amqp_url)
            self._local.channel = chan
            with self._lock:
                self._all.append(chan)
        return chan

    def _drop(self) -> None:
        chan = getattr(self._local, "channel", None)
        self._local.channel = None
        if chan is not None:
            chan.close()
            with self._lock:
                if chan in self._all:
                    self._all.remove(chan)

    def call(self, service: str, method: str, *args: Any, timeout: float | None = None,
             **kwargs: Any) -> Any:
        cid = correlation_id.get()
        headers = {"nameko.call_id_stack": [f"gateway.{method}.{uuid.uuid4().hex[:8]}"]}
        if cid:
            headers[broker.CORRELATION_HEADER] = cid
        for attempt in (1, 2):
            try:
                chan = self._channel()
                return chan.call(service, method, args, kwargs, timeout or self.timeout, headers)
            except _NotSent as exc:
                self._drop()  # a stale connection (broker restarted, connections closed)
                if attempt == 2:
                    raise Unavailable(f"message broker unreachable: {exc}", code="broker") from None
            except (pika.exceptions.AMQPError, OSError) as exc:
                # Lost while waiting: the call may have run, so it is not sent again.
                self._drop()
                raise Unavailable(f"message broker connection lost: {exc}", code="broker") from None
        raise AssertionError("unreachable")

    def check(self) -> None:
        """Raise unless this thread's broker connection is (or can be made) open.

        A connection the broker closed since its last use (a restart, a forced close) is
        replaced once before the broker is reported down.
        """
        for attempt in (1, 2):
            try:
                self._channel().connection.process_data_events(0)
                return
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._drop()
                if attempt == 2:
                    raise Unavailable(f"message broker unreachable: {exc}",
                                      code="broker") from None

    def __getattr__(self, service: str) -> _ServiceProxy:
        if service.startswith("_"):
            raise AttributeError(service)
        return _ServiceProxy(self, service)

    def close(self) -> None:
        with self._lock:
            channels, self._all = self._all, []
        for chan in channels:
            chan.close()


class _ServiceProxy:
    def __init__(self, client: RpcClient, service: str) -> None:
        self._client = client
        self._service = service

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._client.call(self._service, method, *args, **kwargs)

        return call
