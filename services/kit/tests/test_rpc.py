"""The kit's RPC entrypoint and publisher answer exactly as nameko's did, for less work.

Unit tests check the container's rebinding, the cached signature check and the reply's
bytes; the broker tests run two services with Kepu's runner (a subprocess, so eventlet's
patching stays out of this process) and publish through a kept producer across a dropped
connection.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import pika
import pytest
from nameko import rpc as nameko_rpc
from nameko.exceptions import IncorrectSignature, MethodNotFound, RemoteError
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc as NamekoRpc
from nameko.rpc import rpc

from deploy.stack import ROOT
from services.kit import rpc as kit_rpc
from services.kit.config import Settings
from services.kit.container import Container
from services.kit.errors import Conflict
from services.kit.health import Health
from services.kit.publish import Publisher, producer_pool, reset_pools
from services.kit.rpc_client import RpcClient
from services.kit.rpc_proxy import ServiceClient


class ContextData(DependencyProvider):
    def get_dependency(self, worker_ctx: Any) -> dict[str, Any]:
        return {**worker_ctx.data, "call_id_stack": worker_ctx.call_id_stack}


class Teller(Health):
    name = "teller"
    context = ContextData()
    store = None

    @rpc(expected_exceptions=Conflict)
    def echo(self, payload: Any, twice: bool = False) -> Any:
        return [payload, payload] if twice else payload

    @rpc
    def headers(self) -> dict[str, Any]:
        return dict(self.context)

    @rpc
    def unserialisable(self) -> Any:
        return object()


class Asker:
    name = "asker"
    teller = ServiceClient("teller")
    nobody = ServiceClient("nobody")

    @kit_rpc.rpc
    def ask(self, payload: Any) -> Any:
        return {"echo": self.teller.echo(payload), "headers": self.teller.headers()}

    @kit_rpc.rpc
    def ask_nobody(self) -> Any:
        return self.nobody.anything()


def _container(cls: type) -> Container:
    return Container(cls, Settings.from_env({"KEPU_JWT_SECRET": "s"}).nameko_config())


def test_every_rpc_of_a_service_becomes_the_kits_with_its_options():
    container = _container(Teller)
    rpcs = {e.method_name: e for e in container.entrypoints}
    assert set(rpcs) == {"echo", "headers", "unserialisable", "ping"}  # ping: Health's
    assert all(type(e) is kit_rpc.Rpc for e in rpcs.values())
    assert rpcs["echo"].expected_exceptions == Conflict
    consumers = {id(e.rpc_consumer) for e in rpcs.values()}
    assert len(consumers) == 1  # one consumer of rpc-teller, as nameko had
    assert not any(type(e) is NamekoRpc for e in container.extensions)


def test_a_services_dependencies_keep_their_shared_reply_listener():
    container = _container(Asker)
    listeners = {client.rpc_reply_listener for client in container.dependencies}
    assert len(container.dependencies) == 2 and len(listeners) == 1  # one per service
    (listener,) = listeners
    assert listener in container.subextensions
    assert container.shared_extensions[listener.sharing_key] is listener
    entrypoints = container.entrypoints
    assert {e.rpc_consumer.queue_consumer for e in entrypoints} == {listener.queue_consumer}


def test_the_signature_answer_is_remembered_per_argument_shape_not_per_value():
    container = _container(Teller)  # extensions hold their container weakly
    entrypoint = next(e for e in container.entrypoints if e.method_name == "echo")
    entrypoint.setup()
    for payload in ({"a": 1}, [1, 2], "x"):
        entrypoint.check_signature((payload,), {})
        entrypoint.check_signature((payload,), {"twice": True})
    for args, kwargs in (((), {}), ((1, 2, 3), {}), ((1,), {"thrice": True})):
        for _ in range(2):  # the second answer comes from the cache, and is the same
            with pytest.raises(IncorrectSignature):
                entrypoint.check_signature(args, kwargs)
    assert len(entrypoint._shapes) == 5


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, dict[str, Any]]] = []

    def publish(self, body: Any, **kwargs: Any) -> None:
        self.sent.append((body, kwargs))


class _Message:
    properties = {"content_type": "application/json", "reply_to": "r-1",
                  "correlation_id": "c-1"}


def test_the_reply_is_namekos_payload_serialised_once():
    publisher = _Recorder()
    result, exc_info = kit_rpc.Responder(publisher, "x", _Message()).send_response(
        {"seats": 3}, None)
    ((body, kwargs),) = publisher.sent
    assert result == {"seats": 3} and exc_info is None
    assert json.loads(body) == {"result": {"seats": 3}, "error": None}
    assert kwargs["content_type"] == "application/json"
    assert (kwargs["routing_key"], kwargs["correlation_id"]) == ("r-1", "c-1")
    assert kwargs["use_confirms"] is False  # a lost reply is the caller's timeout either way


def test_an_unserialisable_result_is_answered_with_nameko_error():
    publisher = _Recorder()
    result, exc_info = kit_rpc.Responder(publisher, "x", _Message()).send_response(
        object(), None)
    ((body, _),) = publisher.sent
    reply = json.loads(body)
    assert result is None and exc_info is not None
    assert reply["result"] is None and reply["error"]["exc_type"] == "UnserializableValueError"


class _Listener:
    routing_key = "reply-1"

    def __init__(self) -> None:
        self._reply_events: dict[str, Any] = {}

    def get_reply_event(self, correlation_id: str) -> Any:
        self._reply_events[correlation_id] = object()
        return self._reply_events[correlation_id]


class _Unroutable(_Recorder):
    def publish(self, body: Any, **kwargs: Any) -> None:
        super().publish(body, **kwargs)
        from nameko.amqp.publish import UndeliverableMessage

        raise UndeliverableMessage()


class _WorkerContext:
    context_data: dict[str, Any] = {}


def _request(target: kit_rpc.Target, publisher: Any, listener: _Listener) -> None:
    proxy = kit_rpc.ServiceProxy(_WorkerContext(), target, listener, publisher)
    proxy.hold.call_async(claim_id="c-1")


def test_requests_are_confirmed_until_the_broker_routed_one_to_the_service():
    target, publisher, listener = kit_rpc.Target("venues", "x"), _Recorder(), _Listener()
    for _ in range(3):
        _request(target, publisher, listener)
    modes = [(kwargs["mandatory"], kwargs["use_confirms"]) for _, kwargs in publisher.sent]
    assert modes == [(True, True), (False, False), (False, False)]
    assert [kwargs["routing_key"] for _, kwargs in publisher.sent] == ["venues.hold"] * 3
    assert target.routed


def test_a_service_with_no_queue_is_unknown_on_every_call():
    target, publisher, listener = kit_rpc.Target("nobody", "x"), _Unroutable(), _Listener()
    for _ in range(2):
        with pytest.raises(nameko_rpc.UnknownService):
            _request(target, publisher, listener)
    assert [kwargs["mandatory"] for _, kwargs in publisher.sent] == [True, True]
    assert not target.routed and listener._reply_events == {}


# -- against the broker ------------------------------------------------------------------------

def _queue(amqp_url: str) -> tuple[pika.BlockingConnection, str]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    name = f"kit-publish-{uuid.uuid4().hex[:8]}"
    connection.channel().queue_declare(name, auto_delete=True)
    return connection, name


def _received(connection: pika.BlockingConnection, queue: str, count: int) -> list[Any]:
    channel, bodies = connection.channel(), []
    deadline = time.monotonic() + 10
    while len(bodies) < count and time.monotonic() < deadline:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            connection.sleep(0.05)
        else:
            bodies.append(json.loads(body))
    return bodies


def test_a_kept_producer_reconnects_after_its_connection_drops(amqp_url: str):
    reset_pools()
    connection, queue = _queue(amqp_url)
    publisher = Publisher(amqp_url)
    try:
        publisher.publish({"n": 1}, routing_key=queue)
        pool = producer_pool(amqp_url, confirms=True)
        (producer,) = pool._free
        producer.connection.connection.sock.close()  # the broker's side is gone
        publisher.publish({"n": 2}, routing_key=queue, mandatory=True)
        assert pool._free == [producer]  # same producer, revived on a new connection
        assert _received(connection, queue, 2) == [{"n": 1}, {"n": 2}]
    finally:
        reset_pools()
        connection.close()


@pytest.mark.parametrize("confirms", [True, False], ids=["confirmed", "unconfirmed"])
def test_a_kept_producer_survives_the_broker_closing_every_connection(amqp_url: str,
                                                                      confirms: bool):
    # Without a confirm nothing waits on the producer's connection after a publish, so
    # the broker's close lies unread until the next publish, which must find it (py-amqp
    # reads what is waiting before each publish) rather than write into a closed socket.
    reset_pools()
    connection, queue = _queue(amqp_url)
    publisher = Publisher(amqp_url, use_confirms=confirms)
    try:
        publisher.publish({"n": 1}, routing_key=queue)
        vhost = amqp_url.rsplit("/", 1)[1]
        subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "drill"],
                       check=True, capture_output=True, timeout=60)
        connection, _ = _queue(amqp_url)  # the test's own connection was closed too
        publisher.publish({"n": 2}, routing_key=queue, mandatory=confirms)
        publisher.publish({"n": 3}, routing_key=queue, mandatory=confirms)
        assert _received(connection, queue, 3) == [{"n": 1}, {"n": 2}, {"n": 3}]
    finally:
        reset_pools()
        connection.close()


def test_a_producer_whose_publish_failed_is_not_reused(amqp_url: str):
    reset_pools()
    publisher = Publisher(amqp_url)
    try:
        from nameko.amqp.publish import UndeliverableMessage

        with pytest.raises(UndeliverableMessage):
            publisher.publish({"n": 1}, routing_key=f"nobody-{uuid.uuid4().hex}",
                              mandatory=True)
        assert producer_pool(amqp_url, confirms=True)._free == []
    finally:
        reset_pools()


@pytest.fixture()
def services(amqp_url: str):
    env = {**os.environ, "AMQP_URL": amqp_url, "KEPU_JWT_SECRET": "s",
           "KEPU_LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    procs = [subprocess.Popen([sys.executable, "-m", "services.kit.runner",
                               f"services.kit.tests.test_rpc:{name}"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name in ("Teller", "Asker")]
    client = RpcClient(amqp_url, timeout=10)
    try:
        deadline = time.monotonic() + 60
        for service, method in (("teller", "headers"), ("asker", "ask")):
            while True:
                try:
                    client.call(service, method, *(() if service == "teller" else (0,)),
                                timeout=2)
                    break
                except Exception:  # noqa: BLE001 - not consuming yet
                    assert time.monotonic() < deadline, f"{service} did not start"
                    time.sleep(0.2)
        yield client
    finally:
        client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)


def test_calls_between_services_carry_results_and_context(services: RpcClient):
    from concurrent.futures import ThreadPoolExecutor

    from services.kit.logs import correlation_id

    def ask(claim: dict[str, Any]) -> Any:
        correlation_id.set(f"cid-{claim['claim']}")
        return services.call("asker", "ask", claim)

    claims = [{"claim": i, "groups": [{"label": "五年级(1)班", "students": 30}]}
              for i in range(40)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, claims))
    assert [a["echo"] for a in answers] == claims
    assert [a["headers"]["correlation_id"] for a in answers] == [
        f"cid-{i}" for i in range(40)]
    stacks = [a["headers"]["call_id_stack"] for a in answers]
    assert all(len(s) == 3 and s[0].startswith("gateway.ask.")
               and s[1].startswith("asker.ask.") and s[2].startswith("teller.headers.")
               for s in stacks)


def test_bad_calls_get_nameko_answers(services: RpcClient):
    with pytest.raises(IncorrectSignature):
        services.call("teller", "echo")
    with pytest.raises(MethodNotFound):
        services.call("teller", "nope")
    with pytest.raises(RemoteError) as unserialisable:
        services.call("teller", "unserialisable")
    assert unserialisable.value.exc_type == "UnserializableValueError"
    assert services.call("teller", "echo", "again", twice=True) == ["again", "again"]
    for _ in range(2):  # a service that never ran stays unknown, the first call or later
        with pytest.raises(RemoteError) as unknown:
            services.call("asker", "ask_nobody")
        assert unknown.value.exc_type == "UnknownService"
