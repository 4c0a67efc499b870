"""Publishing from a service without building a connection per message.

nameko 2.14 publishes every RPC request and every RPC reply through `get_producer`: it
builds a kombu `Connection` (parsing the broker URL), hashes it to find its pool, takes a
producer, revives it on a pooled connection, and undoes all of it afterwards. At a claim
burst that was about a tenth of a service's CPU. `Publisher` here keeps ready producers on
long-lived connections, one per concurrent publish, and is otherwise nameko's: confirms,
`mandatory`, the retry policy, persistent delivery and headers are unchanged.

After a broker drop a kept producer reconnects the way kombu always does (`ensure` in
`Producer.publish` revives it on a new channel). A producer whose publishes are not
confirmed never reads its connection after one, so a close the broker sent meanwhile waits
unread until its next publish, which finds it: py-amqp reads what is waiting before each
publish. A producer whose publish raised is closed, not reused: its channel may still owe
a confirm, which the next publish would mistake for its own.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

from eventlet.semaphore import Semaphore
from kombu import Connection, Producer
from kombu.exceptions import ChannelError
from kombu.pools import get_limit
from nameko.amqp import publish as nameko_publish
from nameko.amqp.publish import UndeliverableMessage


class ProducerPool:
    """At most `limit` producers (and broker connections) for one broker and option set."""

    def __init__(self, amqp_uri: str, transport_options: dict[str, Any], ssl: Any = None,
                 login_method: str | None = None, limit: int | None = None) -> None:
        self._connect = (amqp_uri, dict(transport_options), ssl, login_method)
        self._free: list[Producer] = []
        self._slots = Semaphore(limit or get_limit() or 10)

    def _new(self) -> Producer:
        uri, options, ssl, login_method = self._connect
        connection = Connection(uri, transport_options=dict(options), ssl=ssl,
                                login_method=login_method)
        return Producer(connection)

    @contextlib.contextmanager
    def acquire(self) -> Iterator[Producer]:
        with self._slots:
            producer = self._free.pop() if self._free else self._new()
            try:
                yield producer
            except BaseException:
                _close(producer)
                raise
            self._free.append(producer)

    def close(self) -> None:
        while self._free:
            _close(self._free.pop())


def _close(producer: Producer) -> None:
    connection = producer.connection
    try:
        if connection is not None:
            connection.collect()  # no network round trip: the socket may be dead
    except Exception:  # noqa: BLE001, S110 - closing a broken connection best-effort
        pass


_pools: dict[tuple, ProducerPool] = {}


def producer_pool(amqp_uri: str, confirms: bool, ssl: Any = None,
                  login_method: str | None = None,
                  transport_options: dict[str, Any] | None = None) -> ProducerPool:
    """The process's pool for these connection settings (nameko's `get_producer` key)."""
    options = dict(transport_options or nameko_publish.DEFAULT_TRANSPORT_OPTIONS)
    options["confirm_publish"] = confirms
    key = (amqp_uri, repr(ssl), login_method, repr(sorted(options.items())))
    pool = _pools.get(key)
    if pool is None:
        pool = _pools[key] = ProducerPool(amqp_uri, options, ssl, login_method)
    return pool


def reset_pools() -> None:
    """Close every kept producer (tests that delete their vhost)."""
    for pool in list(_pools.values()):
        pool.close()
    _pools.clear()


class Publisher(nameko_publish.Publisher):
    """nameko's `Publisher`, publishing through a kept producer."""

    def publish(self, payload: Any, **kwargs: Any) -> None:
        publish_kwargs = self.publish_kwargs.copy()
        headers = publish_kwargs.pop("headers", {}).copy()
        headers.update(kwargs.pop("headers", {}))
        headers.update(kwargs.pop("extra_headers", {}))

        use_confirms = kwargs.pop("use_confirms", self.use_confirms)
        transport_options = kwargs.pop("transport_options", self.transport_options)
        mandatory = kwargs.pop("mandatory", self.mandatory)
        send = {
            "delivery_mode": kwargs.pop("delivery_mode", self.delivery_mode),
            "priority": kwargs.pop("priority", self.priority),
            "expiration": kwargs.pop("expiration", self.expiration),
            "compression": kwargs.pop("compression", self.compression),
            "retry": kwargs.pop("retry", self.retry),
            "retry_policy": kwargs.pop("retry_policy", self.retry_policy),
            "serializer": kwargs.pop("serializer", self.serializer),
            "declare": [*self.declare, *kwargs.pop("declare", ())],
        }
        publish_kwargs.update(kwargs)  # remaining publish-time kwargs win

        pool = self._pool(use_confirms, transport_options)
        with pool.acquire() as producer:
            try:
                producer.publish(payload, headers=headers, mandatory=mandatory, **send,
                                 **publish_kwargs)
            except ChannelError as exc:
                if "NO_ROUTE" in str(exc):
                    raise UndeliverableMessage() from None
                raise
        if mandatory and not use_confirms:
            warnings.warn("Mandatory delivery was requested, but unroutable messages "
                          "cannot be detected without publish confirms enabled.",
                          stacklevel=2)

    def _pool(self, use_confirms: bool, transport_options: dict[str, Any]) -> ProducerPool:
        if transport_options is not self.transport_options:
            return producer_pool(self.amqp_uri, use_confirms, self.ssl, self.login_method,
                                 transport_options)
        # a publisher lives as long as its service: look its pools up once
        pools = self.__dict__.setdefault("_pools", {})
        pool = pools.get(use_confirms)
        if pool is None:
            pool = pools[use_confirms] = producer_pool(
                self.amqp_uri, use_confirms, self.ssl, self.login_method, transport_options)
        return pool
