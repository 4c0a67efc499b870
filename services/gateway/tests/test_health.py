from __future__ import annotations

from services.gateway import health
from services.gateway.tests.fakes import FakeRpc
from services.kit import services


class Ping:
    def command(self, name):
        assert name == "ping"


class Mongo:
    admin = Ping()


class Gateway:
    def __init__(self) -> None:
        self.rpc = FakeRpc()
        self.mongo = Mongo()


def test_readiness_pings_every_registered_service():
    gateway = Gateway()
    status, report = health.check(gateway)
    assert status == 200 and set(report["services"]) == set(services.selected())
    assert {s for s, m, _, _ in gateway.rpc.calls if m == "ping"} == set(services.selected())


def test_a_service_down_makes_it_503():
    gateway = Gateway()

    def down():
        raise TimeoutError("no reply")

    gateway.rpc.on("booking", "ping", down)
    status, report = health.check(gateway, ("venues", "booking"))
    assert status == 503 and report["status"] == "degraded"
    assert report["services"] == {"venues": "ok", "booking": "down: no reply"}


def test_readiness_is_shared_for_its_interval():
    gateway, now = Gateway(), [0.0]
    ready = health.Readiness(gateway, ttl_s=2.0, now=lambda: now[0])
    first = ready()
    for _ in range(10):
        assert ready() == first
    pings = len(gateway.rpc.calls)
    now[0] = 2.5
    ready()
    assert len(gateway.rpc.calls) == 2 * pings
