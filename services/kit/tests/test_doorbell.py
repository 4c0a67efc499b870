"""The relays' doorbell: who rings, when, what a relay hears, and what it does then."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from services.kit import doorbell, outbox
from services.kit.config import Settings
from services.kit.doorbell import Bell, Listener
from services.kit.outbox import event, with_events
from services.kit.publish import reset_pools
from services.kit.relay import POLL_MIN_S, Relay
from services.kit.tests.test_relay import VENUE, Recorder
from tests.support import wait_for


def _stage() -> None:
    with_events({"_id": "x"}, event("venues.venue_registered", VENUE))


@pytest.fixture()
def rings(amqp_url: str) -> Iterator[Any]:
    """The rings published to the doorbell's exchange, read from a queue of the test's."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.exchange_declare(doorbell.EXCHANGE, exchange_type="fanout", durable=True)
    queue = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(queue, doorbell.EXCHANGE)

    def heard(expected: int, within: float = 10.0) -> list[str]:
        bodies: list[str] = []
        deadline = time.monotonic() + within
        while len(bodies) < expected and time.monotonic() < deadline:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                connection.sleep(0.02)
            else:
                bodies.append(body.decode())
        return bodies

    def left() -> int:
        return channel.queue_declare(queue, passive=True).method.message_count

    heard.left = left  # type: ignore[attr-defined]
    yield heard
    connection.close()
    reset_pools()


def _bell(amqp_url: str, now: list[float]) -> Bell:
    bell = Bell(amqp_url, "kepu_venues")
    bell.monotonic = lambda: now[0]
    return bell


def test_a_worker_that_staged_nothing_rings_nothing(amqp_url: str, rings: Any):
    bell = _bell(amqp_url, [100.0])
    assert bell.after_work() is False
    _stage()
    assert bell.after_work() is True
    assert rings(1) == ["kepu_venues"]  # the service's database, nothing else
    bell.monotonic = lambda: 200.0
    assert bell.after_work() is False  # nothing staged since that ring
    assert rings.left() == 0


def test_a_process_rings_at_most_once_per_interval_and_later_for_what_it_skipped(
        amqp_url: str, rings: Any):
    now = [100.0]
    bell = _bell(amqp_url, now)
    _stage()
    assert bell.after_work() is True
    for _ in range(5):  # a burst's workers inside the interval add no message
        _stage()
        now[0] += doorbell.RING_EVERY_S / 10
        assert bell.after_work() is False
    now[0] += doorbell.RING_EVERY_S
    assert bell.after_work() is True  # the first worker after it rings for them
    assert rings(2) == ["kepu_venues", "kepu_venues"]
    assert rings.left() == 0


def test_a_ring_that_cannot_be_sent_is_not_the_workers_failure(caplog: Any):
    bell = Bell("amqp://guest:guest@127.0.0.1:1/%2F", "kepu_venues")  # nobody listens there
    try:
        _stage()
        assert bell.after_work() is False
        bell.monotonic = lambda: time.monotonic() + doorbell.RING_EVERY_S * 2
        _stage()
        assert bell.after_work() is False  # it stays quiet a while after failing
        bell.monotonic = lambda: time.monotonic() + doorbell.QUIET_AFTER_FAILURE_S + 1
        assert bell.after_work() is False  # tried again, failed again
    finally:
        reset_pools()
    warnings = [r for r in caplog.records if "could not ring" in r.getMessage()]
    assert len(warnings) == 1  # once per failing spell, not per worker


@pytest.fixture()
def listener(amqp_url: str) -> Iterator[tuple[Listener, list[str]]]:
    heard: list[str] = []
    stopping = threading.Event()
    ear = Listener(amqp_url, heard.append, stopping)
    ear.start()
    try:
        assert ear.listening.wait(10), "the listener did not start consuming"
        yield ear, heard
    finally:
        stopping.set()
        ear.join(timeout=10)
        assert not ear.is_alive(), "the listener did not stop"


def test_a_relay_hears_a_ring_and_hears_again_after_the_broker_dropped_it(
        amqp_url: str, listener: tuple[Listener, list[str]]):
    ear, heard = listener
    bell = _bell(amqp_url, [100.0])
    _stage()
    bell.after_work()
    wait_for(lambda: heard == ["kepu_venues"], timeout=10)
    vhost = amqp_url.rsplit("/", 1)[1]
    subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost, "drill"],
                   check=True, capture_output=True, timeout=60)
    wait_for(lambda: not ear.listening.is_set(), timeout=10)
    assert ear.listening.wait(10), "the listener did not come back"
    reset_pools()  # the bell's kept connection was closed too
    bell.monotonic = lambda: 200.0
    _stage()
    bell.after_work()
    wait_for(lambda: heard == ["kepu_venues", "kepu_venues"], timeout=10)


def test_a_listener_whose_handler_failed_listens_on(amqp_url: str):
    heard: list[str] = []

    def fussy(database: str) -> None:
        heard.append(database)
        if len(heard) == 1:
            raise RuntimeError("a bug in the relay's answer")

    stopping = threading.Event()
    ear = Listener(amqp_url, fussy, stopping)
    ear.start()
    try:
        assert ear.listening.wait(10)
        now = [100.0]
        bell = _bell(amqp_url, now)
        _stage()
        bell.after_work()
        wait_for(lambda: heard == ["kepu_venues"], timeout=10)
        wait_for(lambda: not ear.listening.is_set(), timeout=10)  # it dropped that connection
        assert ear.listening.wait(10), "the listener did not come back"
        now[0] += 1
        _stage()
        bell.after_work()
        wait_for(lambda: heard == ["kepu_venues", "kepu_venues"], timeout=10)
    finally:
        stopping.set()
        ear.join(timeout=10)
        reset_pools()
    assert not ear.is_alive()


# -- what a relay does with a ring ---------------------------------------------------------

@pytest.fixture()
def idle_relay(db: Any) -> Iterator[tuple[Relay, list[float]]]:
    """A relay on a fake clock, its two sources backed off to a minute's wait."""
    db.venues.create_index("outbox_pending")
    db.sessions.create_index("outbox_pending")
    relay = Relay(Settings(mongo_url="unused", db_prefix=db.name.split("_")[0],
                           relay_idle_poll_s=60.0), client=db.client, publisher=Recorder())
    now = [1000.0]
    relay.monotonic = lambda: now[0]
    relay.tick()
    for _ in range(40):  # empty polls, each when due, until every source waits a minute
        now[0] = min(s.due for s in relay._sources.values())
        relay.tick()
    assert all(s.wait == 60.0 for s in relay._sources.values())
    now[0] += 1  # a second into the minute's wait
    relay._discover_at = now[0] + 3600  # no listing due either: only a ring can start a poll
    yield relay, now


def _venue(i: int) -> dict[str, Any]:
    return with_events({"_id": f"ven_{i}"}, event("venues.venue_registered",
                                                  {**VENUE, "venue_id": f"ven_{i}"}))


def test_a_ring_makes_the_quiet_sources_of_its_database_due_now(db: Any, idle_relay: Any):
    relay, _now = idle_relay
    db.venues.insert_one(_venue(1))
    assert relay.tick() == 0  # not due: without a ring this event waits out the minute
    relay.ring(db.name)
    relay._sleep(30)  # returns at once: the ring woke it
    assert relay.tick() == 1
    assert relay.publisher.sent  # the event went out on the same clock instant
    # the rung sources start backing off again from 50 ms, not from a minute
    assert relay._sources[f"{db.name}.sessions"].wait == POLL_MIN_S


def test_a_ring_while_a_source_is_busy_changes_nothing(db: Any, idle_relay: Any):
    relay, now = idle_relay
    db.venues.insert_one(_venue(1))
    relay.ring(db.name)
    relay._sleep(30)
    assert relay.tick() == 1  # venues is busy now: its next poll is 50 ms away
    due = {name: s.due for name, s in relay._sources.items()}
    relay.ring(db.name)
    relay._sleep(30)
    assert {name: s.due for name, s in relay._sources.items()} == due


def test_rings_for_other_databases_start_no_poll_and_an_unknown_one_a_listing(
        db: Any, idle_relay: Any):
    relay, now = idle_relay
    due = {name: s.due for name, s in relay._sources.items()}
    relay.ring("elsewhere_venues")  # another deployment's prefix
    relay._sleep(30)
    assert relay._discover_at == now[0] + 3600
    relay.ring(f"{db.name}_new")  # this deployment's prefix, no source known yet
    relay._sleep(30)
    assert relay._discover_at == now[0]
    assert {name: s.due for name, s in relay._sources.items()} == due


def test_a_stop_ends_the_wait_like_a_ring(idle_relay: Any):
    relay, _now = idle_relay
    relay.stop()  # what SIGTERM calls
    assert relay.stopping.is_set() and relay.wake.is_set()
    relay._sleep(600)  # returns at once
    assert not relay.wake.is_set()


def test_staging_counts_only_when_there_are_events():
    before = outbox.stagings()
    with_events({"_id": "y"})
    outbox.add_events({"$set": {"a": 1}})
    assert outbox.stagings() == before
    _stage()
    assert outbox.stagings() == before + 1


def test_a_ring_right_after_an_empty_poll_waits_as_long_as_a_busy_source_would(
        db: Any, idle_relay: Any):
    relay, now = idle_relay
    relay.ring(db.name)
    relay._sleep(30)
    assert relay.tick() == 0  # rung, polled at once: nothing there (the write came later)
    due = {name: s.due for name, s in relay._sources.items()}
    assert set(due.values()) == {now[0] + POLL_MIN_S}
    now[0] += POLL_MIN_S / 5
    relay.ring(db.name)
    relay._sleep(30)
    assert {name: s.due for name, s in relay._sources.items()} == due
