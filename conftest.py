"""Fixtures shared by every test: a private MongoDB stand-in, a private RabbitMQ vhost, and
the whole stack started once per session against them.

Nothing is shared with a developer's running stack: the database server listens on its
own port with its data in a temporary directory, and the vhost is created for this run
and deleted after it (stale vhosts of dead runs are removed first).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pymongo
import pymongo.database
import pytest

from deploy import broker as broker_admin
from deploy.stack import Stack, free_port, private_mongo, stack_env
from services.kit import broker
from services.kit import services as registry
from services.kit.rpc_client import RpcClient
from tests.sinks import Sinks
from tests.support import Api

os.environ.setdefault("KEPU_JWT_SECRET", "test-secret-" + uuid.uuid4().hex)
TEST_ENV = {
    "KEPU_JWT_SECRET": os.environ["KEPU_JWT_SECRET"],
    "KEPU_RETRY_DELAYS_MS": "100,200,400",
    "KEPU_LOG_LEVEL": "INFO",
    "PYTHONWARNINGS": "ignore::DeprecationWarning",
    "KEPU_NOTIFY_RETRY_DELAYS_MS": "100,200",
    "KEPU_NOTIFY_TICK_S": "0.2",
    "KEPU_RELAY_IDLE_POLL_S": "0.2",  # events sooner: the relay's own tests set its clock
    "KEPU_QUIET_HOURS": "",  # stack tests run at any hour; unit tests move the clock instead
}


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kepu-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def mongo_url(tmp_root: Path) -> Iterator[str]:
    """A private nx-27017 for this test run."""
    if os.environ.get("KEPU_TEST_MONGO_URL"):
        yield os.environ["KEPU_TEST_MONGO_URL"]
        return
    with private_mongo(tmp_root / "mongo") as url:
        yield url


@pytest.fixture()
def db(mongo_url: str) -> Iterator[pymongo.database.Database]:
    """A fresh database on the test run's nx-27017, dropped afterwards (unit tests)."""
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    name = f"unit_{uuid.uuid4().hex[:10]}"
    yield client[name]
    client.drop_database(name)
    client.close()


def _stale_vhosts() -> list[str]:
    stale = []
    for name in broker_admin.list_vhosts():
        parts = name.split("-")
        if name.startswith("kepu-test-") and len(parts) >= 4 and parts[2].isdigit():
            try:
                os.kill(int(parts[2]), 0)
            except ProcessLookupError:
                stale.append(name)
            except PermissionError:
                pass
    return stale


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test run's own, deleted afterwards."""
    base = os.environ.get("AMQP_URL", broker_admin.DEFAULT)
    for name in _stale_vhosts():
        broker_admin.delete_vhost(name)
    vhost = f"kepu-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    broker_admin.create_vhost(vhost)
    try:
        yield broker_admin.vhost_url(base, vhost)
    finally:
        broker_admin.delete_vhost(vhost)


@pytest.fixture(scope="session")
def sinks() -> Iterator[Sinks]:
    """A loopback SMTP server and SMS/WeChat webhook receiver the stack sends to."""
    with Sinks.running() as running:
        yield running


@pytest.fixture(scope="session")
def settings_env(amqp_url: str, mongo_url: str, tmp_root: Path, sinks: Sinks) -> dict[str, str]:
    base = {**os.environ, **TEST_ENV, **sinks.env(), "AMQP_URL": amqp_url,
            "MONGO_URL": mongo_url}
    return stack_env(base, var=tmp_root / "var", gateway_port=free_port())


PROBE = "tests.probe:ProbeService"


@pytest.fixture(scope="session")
def event_tap(stack: Stack, settings_env: dict[str, str]) -> Iterator[dict]:
    """A queue bound to every producer's events exchange since the stack started."""
    yield stack.tap


@pytest.fixture(scope="session")
def api(stack: Stack, settings_env: dict[str, str]) -> Api:
    """HTTP clients for the running gateway, signed in as real people: `api.admin.post(...)`
    (tests/support.py: an admin bootstrapped once, others invited and signed in once)."""
    return Api(stack.url, TEST_ENV["KEPU_JWT_SECRET"], settings_env["AMQP_URL"])


@pytest.fixture(scope="session")
def rpc(settings_env: dict[str, str]) -> Iterator[RpcClient]:
    client = RpcClient(settings_env["AMQP_URL"], timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="session")
def stack(settings_env: dict[str, str], tmp_root: Path) -> Iterator[Stack]:
    """Every service, the relay, the gateway and a test probe, up and healthy."""
    running = Stack(settings_env, tmp_root / "logs")
    try:
        running.start_all()
        running.tap = _bind_tap(settings_env["AMQP_URL"])
        running.start(PROBE)
        running.wait_healthy(timeout=120)
        yield running
    except Exception:
        _dump_logs(tmp_root / "logs")
        raise
    finally:
        running.close()
        leftovers = [n for n, p in running.procs.items() if p.poll() is None]
        assert not leftovers, f"processes left running: {leftovers}"
        if os.environ.get("KEPU_TEST_SHOW_LOGS"):
            _dump_logs(tmp_root / "logs")


def _bind_tap(amqp_url: str) -> dict:
    """Copy every event of this run into one queue, for the contract check at the end."""

    connection = pika.BlockingConnection(broker.parameters(amqp_url))
    try:
        channel = connection.channel()
        channel.queue_declare("kepu.test.tap", durable=True)  # outlives dropped connections
        for producer in registry.producers():
            broker.declare_events_exchange(channel, producer)
            channel.queue_bind("kepu.test.tap", broker.events_exchange(producer),
                               routing_key="#")
    finally:
        connection.close()
    return {"amqp_url": amqp_url, "queue": "kepu.test.tap"}


def _dump_logs(log_dir: Path) -> None:
    for path in sorted(log_dir.glob("*.log")):
        tail = path.read_text(errors="replace").splitlines()[-40:]
        print(f"\n===== {path.name} =====\n" + "\n".join(tail))
