"""The outbox, the relay and the failure policy, end to end on real RabbitMQ and nx-27017."""

from __future__ import annotations

import json
import subprocess
import sys

import pika
import pymongo
import pytest

from deploy.stack import ROOT
from services.kit import doorbell
from tests.support import wait_for

pytestmark = pytest.mark.stack


@pytest.fixture()
def db(settings_env):
    client = pymongo.MongoClient(settings_env["MONGO_URL"], tz_aware=True)
    yield client
    client.close()


def kepu(settings_env, *args):
    return subprocess.run([sys.executable, "-m", "services.kit.cli", *args], cwd=ROOT,
                          env=settings_env, capture_output=True, text=True, timeout=60)


def test_event_applied_once_when_relay_dies_between_publish_and_mark(stack, api, db):
    stack.stop("relay")
    crashing = stack.start("relay", {"KEPU_RELAY_FAULT": "kill_after_publish"})
    try:
        venue = api.register_venue(name="Relay drill museum")
        crashing.wait(timeout=30)  # the relay SIGKILLs itself right after the broker's confirm
        assert crashing.returncode == -9
        doc = db.kepu_venues.venues.find_one({"_id": venue["venue_id"]})
        assert doc["outbox_pending"] == 1, "the entry was published but not marked sent"
        counts = db.kepu_probe.venue_counts
        wait_for(lambda: counts.find_one({"_id": venue["venue_id"]}), message="first delivery")
    finally:
        stack.start("relay")
    wait_for(lambda: db.kepu_venues.venues.find_one({"_id": venue["venue_id"]})
             ["outbox_pending"] == 0, message="restarted relay marks the entry sent")
    counter = db.kepu_probe.venue_counts.find_one({"_id": venue["venue_id"]})
    record = wait_for(lambda: db.kepu_probe.applied_events.find_one(
        {"_id": f"probe.on_venue:{counter['event_id']}", "repeats": {"$gte": 1}}),
        message="the republished copy reached the handler and was skipped")
    assert record["state"] == "applied"
    assert db.kepu_probe.venue_counts.find_one({"_id": venue["venue_id"]})["applied"] == 1
    # booking's consumer of the same event applied it once too
    assert db.kepu_booking.applied_events.find_one(
        {"_id": f"booking.on_venue_registered:{counter['event_id']}"})["state"] == "applied"


def test_failing_handler_parks_event_then_replay_delivers_it_once(stack, api, rpc, db,
                                                                  settings_env):
    rpc.probe.set_broken(True)
    try:
        school = api.register_school(name="Dead-letter drill school")
        parked = wait_for(lambda: _parked_for(settings_env, school["school_id"]), timeout=30,
                          message="the event parked after the bounded retries")
        assert parked["attempts"] == 4  # one try and three retries (KEPU_RETRY_DELAYS_MS)
        assert "ProbeBroken" in parked["error"]
        assert db.kepu_probe.school_counts.find_one({"_id": school["school_id"]}) is None
    finally:
        rpc.probe.set_broken(False)
    replay = kepu(settings_env, "dlq", "replay", parked["event_id"])
    assert replay.returncode == 0, replay.stderr
    assert parked["event_id"] in replay.stdout
    wait_for(lambda: db.kepu_probe.school_counts.find_one({"_id": school["school_id"]}),
             message="the replayed event is applied")
    assert _parked_for(settings_env, school["school_id"]) is None
    again = kepu(settings_env, "dlq", "replay", parked["event_id"])
    assert again.returncode == 1 and "not parked" in again.stdout
    ledger = db.kepu_probe.applied_events.find_one({"handler": "probe.on_school",
                                                     "event_id": parked["event_id"]})
    assert ledger["state"] == "applied"
    assert db.kepu_probe.school_counts.find_one({"_id": school["school_id"]})["applied"] == 1


def _parked_for(settings_env, school_id):
    listing = kepu(settings_env, "dlq", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    for item in json.loads(listing.stdout):
        if (item.get("data") or {}).get("school_id") == school_id:
            return item
    return None


def test_a_service_rings_the_relays_after_writing_an_event(stack, api, settings_env):
    """The doorbell end to end (kit.doorbell): venues rings after the worker that staged
    `venue_registered` wrote it, naming its database, and the relay listens for rings."""
    connection = pika.BlockingConnection(pika.URLParameters(settings_env["AMQP_URL"]))
    try:
        channel = connection.channel()
        channel.exchange_declare(doorbell.EXCHANGE, exchange_type="fanout", durable=True)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, doorbell.EXCHANGE)
        heard = []

        def rang():
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is not None:
                heard.append(body.decode())
            return "kepu_venues" in heard

        api.register_venue(name="Doorbell museum")
        wait_for(rang, message="venues' ring")
        vhost = settings_env["AMQP_URL"].rsplit("/", 1)[1]

        def relay_listening():
            rows = subprocess.run(
                ["rabbitmqctl", "-q", "list_bindings", "-p", vhost, "source_name",
                 "destination_name"], capture_output=True, text=True, timeout=60).stdout
            bound = [line.split("\t")[1] for line in rows.splitlines()
                     if line.startswith(f"{doorbell.EXCHANGE}\t")]
            return [name for name in bound if name != queue]

        wait_for(relay_listening, timeout=30, interval=0.5, message="the relay's own queue")
    finally:
        connection.close()
