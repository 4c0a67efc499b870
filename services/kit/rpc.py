"""nameko's RPC entrypoint and proxy, without the per-message work that never changes.

Per call, nameko 2.14 checks the arguments against the method with `inspect.getcallargs`,
finds the method by formatting every provider's routing key, builds an `Exchange` and a
`Publisher` for the reply, serialises the result twice (once to test it, once to send it)
and publishes through a connection built for the message (see `services.kit.publish`).
Here the signature answer is cached per argument shape, lookups are made once, and the
reply is serialised once and sent through a kept producer. What goes over the wire is
byte-for-byte nameko's, so either side may be plain nameko.

`Container` turns every `@rpc` of a service into this one (one RPC consumer per service
queue: mixing the two would split a queue's methods between consumers), so services keep
`from nameko.rpc import rpc`; `from services.kit.rpc import rpc` says the same.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

import kombu.serialization
from nameko import rpc as nameko_rpc
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import IncorrectSignature, UnserializableValueError, serialize

from services.kit.publish import Publisher

SHAPES_KEPT = 64  # argument shapes remembered per method; callers use one or two


class Responder(nameko_rpc.Responder):
    """Sends the reply serialised once; the bytes are what nameko's would be.

    The reply goes without a publisher confirm. A confirm would tell this worker that the
    broker took the reply, and nothing here could act on it: a reply lost on the way
    leaves the caller waiting until its timeout either way, and the caller's retry finds
    its first attempt by the request's key. The confirm's round trip was about a fifth of
    the CPU a service spends answering a call (`bench.rpc_cost`). Requests go the same
    way once one has proved the service's queue (`Target`).
    """

    publisher_cls = Publisher

    def __init__(self, publisher: Publisher, exchange: Any, message: Any) -> None:
        self.publisher = publisher
        self.exchange = exchange
        self.message = message

    def send_response(self, result: Any, exc_info: Any) -> tuple[Any, Any]:
        error = serialize(exc_info[1]) if exc_info is not None else None
        content_type = self.message.properties["content_type"]
        serializer = kombu.serialization.registry.type_to_name[content_type]
        try:
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": result, "error": error}, serializer)
        except Exception:  # noqa: BLE001 - nameko's disaster avoidance: reply with the error
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))  # always serialisable
            result = None
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": None, "error": error}, serializer)
        self.publisher.publish(
            body, content_type=content_type, content_encoding=encoding,
            exchange=self.exchange, routing_key=self.message.properties["reply_to"],
            correlation_id=self.message.properties.get("correlation_id"),
            use_confirms=False)
        return result, exc_info


class RpcConsumer(nameko_rpc.RpcConsumer):
    """The service queue's consumer: one reply publisher and exchange for its lifetime."""

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.exchange = nameko_rpc.get_rpc_exchange(config)
        self.publisher = Publisher(config[AMQP_URI_CONFIG_KEY],
                                   ssl=config.get(AMQP_SSL_CONFIG_KEY),
                                   login_method=config.get(LOGIN_METHOD_CONFIG_KEY))
        self._by_routing_key: dict[str, Any] = {}

    def get_provider_for_method(self, routing_key: str) -> Any:
        provider = self._by_routing_key.get(routing_key)
        if provider is None:
            provider = super().get_provider_for_method(routing_key)  # or MethodNotFound
            self._by_routing_key[routing_key] = provider
        return provider

    def handle_result(self, message: Any, result: Any, exc_info: Any) -> tuple[Any, Any]:
        responder = Responder(self.publisher, self.exchange, message)
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class Rpc(nameko_rpc.Rpc):
    """nameko's `@rpc`, remembering which argument shapes fit the method."""

    rpc_consumer = RpcConsumer()

    def setup(self) -> None:
        super().setup()
        self._shapes: dict[tuple, str | None] = {}

    def check_signature(self, args: Any, kwargs: Any) -> None:
        # whether a call binds depends only on how many positional arguments there are
        # and which keywords are named, never on their values
        shape = (len(args), *sorted(kwargs))
        error = self._shapes.get(shape, False)
        if error is False:
            try:
                super().check_signature(args, kwargs)
                error = None
            except IncorrectSignature as exc:
                error = str(exc)
            if len(self._shapes) < SHAPES_KEPT:
                self._shapes[shape] = error
        if error is not None:
            raise IncorrectSignature(error)

    @classmethod
    def like(cls, entrypoint: nameko_rpc.Rpc) -> Rpc:
        """This entrypoint with `entrypoint`'s options (expected exceptions, ...)."""
        args, kwargs = entrypoint._Extension__params
        return cls(*args, **kwargs)


rpc = Rpc.decorator


class Target:
    """Where one client's calls go, and whether the broker has routed one there yet.

    Requests are published with a publisher confirm and `mandatory` until the broker has
    routed one to the service's queue: that is how a call to a service that never ran
    fails at once with `UnknownService`. The queue is durable and outlives its consumers,
    so once one request was routed the later ones go without the confirm's round trip
    (about a tenth of a calling service's CPU per call, `bench.rpc_cost`). A request the
    broker then loses ends as the caller's timeout, as a lost reply does.
    """

    def __init__(self, service_name: str, exchange: Any) -> None:
        self.service_name = service_name
        self.exchange = exchange
        self.routed = False


class MethodProxy(nameko_rpc.MethodProxy):
    """One call to another service, published through the client's kept publisher."""

    def __init__(self, worker_ctx: Any, target: Target, method_name: str,
                 reply_listener: Any, publisher: Publisher) -> None:
        self.worker_ctx = worker_ctx
        self.target = target
        self.service_name = target.service_name
        self.method_name = method_name
        self.reply_listener = reply_listener
        self.publisher = publisher

    def _call(self, *args: Any, **kwargs: Any) -> nameko_rpc.RpcReply:
        routing_key = f"{self.service_name}.{self.method_name}"
        correlation_id = str(uuid.uuid4())
        extra_headers = self.get_message_headers(self.worker_ctx)
        reply_event = self.reply_listener.get_reply_event(correlation_id)
        proving = not self.target.routed
        try:
            self.publisher.publish(
                {"args": args, "kwargs": kwargs}, exchange=self.target.exchange,
                routing_key=routing_key, mandatory=proving, use_confirms=proving,
                reply_to=self.reply_listener.routing_key, correlation_id=correlation_id,
                extra_headers=extra_headers)
        except nameko_rpc.UndeliverableMessage:
            self.reply_listener._reply_events.pop(correlation_id, None)
            raise nameko_rpc.UnknownService(self.service_name) from None
        self.target.routed = True
        return nameko_rpc.RpcReply(reply_event)


class RpcProxy(nameko_rpc.RpcProxy):
    """nameko's `RpcProxy` whose publisher and target are made once, at setup."""

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        options = dict(self.options)
        serializer = options.pop("serializer", None) or config.get(SERIALIZER_CONFIG_KEY,
                                                                   DEFAULT_SERIALIZER)
        self.publisher = Publisher(config[AMQP_URI_CONFIG_KEY], serializer=serializer,
                                   ssl=config.get(AMQP_SSL_CONFIG_KEY),
                                   login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
                                   **options)
        self.target = Target(self.target_service, nameko_rpc.get_rpc_exchange(config))

    def get_dependency(self, worker_ctx: Any) -> Any:
        return ServiceProxy(worker_ctx, self.target, self.rpc_reply_listener, self.publisher)


class ServiceProxy:
    def __init__(self, worker_ctx: Any, target: Target, reply_listener: Any,
                 publisher: Publisher) -> None:
        self.worker_ctx = worker_ctx
        self.target = target
        self.service_name = target.service_name
        self.reply_listener = reply_listener
        self.publisher = publisher

    def __getattr__(self, name: str) -> MethodProxy:
        return MethodProxy(self.worker_ctx, self.target, name, self.reply_listener,
                           self.publisher)
