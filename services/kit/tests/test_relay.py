"""The relay's bookkeeping against a real nx-27017, with the broker replaced by a recorder."""

from __future__ import annotations

import pymongo
import pytest

from services.kit.config import Settings
from services.kit.outbox import add_events, event, with_events
from services.kit.relay import Relay

VENUE = {"venue_id": "ven_1", "name": "馆", "kind": "zoo", "district": "d",
         "location": {"lat": 1.0, "lon": 2.0}, "address": "a", "timezone": "Asia/Shanghai"}


class Recorder:
    def __init__(self, fail_after=None):
        self.sent = []
        self.fail_after = fail_after

    def publish(self, envelope):
        if self.fail_after is not None and len(self.sent) >= self.fail_after:
            raise OSError("broker went away")
        self.sent.append(envelope["event_id"])
        return True

    def heartbeat(self):
        pass

    def close(self):
        pass


def _relay(db, publisher):
    settings = Settings(mongo_url="unused", db_prefix=db.name.split("_")[0])
    db.venues.create_index("outbox_pending")
    return Relay(settings, client=db.client, publisher=publisher)


def test_publishes_in_order_then_marks_sent(db):
    envs = [event("venues.venue_registered", VENUE) for _ in range(3)]
    db.venues.insert_one(with_events({"_id": "ven_1"}, envs[0]))
    db.venues.update_one({"_id": "ven_1"}, add_events({"$set": {"x": 1}}, envs[1], envs[2]))
    recorder = Recorder()
    relay = _relay(db, recorder)
    assert relay.relay_once() == 3
    assert recorder.sent == [e["event_id"] for e in envs]
    assert db.venues.find_one({"_id": "ven_1"})["outbox_pending"] == 0
    assert relay.relay_once() == 0 and len(recorder.sent) == 3


def test_a_failed_publish_keeps_the_rest_for_later_in_order(db):
    envs = [event("venues.venue_registered", VENUE) for _ in range(3)]
    db.venues.insert_one(with_events({"_id": "ven_1"}, *envs))
    failing = Recorder(fail_after=1)
    relay = _relay(db, failing)
    try:
        relay.relay_once()
    except OSError:
        pass
    assert failing.sent == [envs[0]["event_id"]]
    doc = db.venues.find_one({"_id": "ven_1"})
    assert doc["outbox_pending"] == 2 and "outbox_lease" not in doc
    ok = Recorder()
    relay.publisher = ok
    relay.relay_once()
    assert ok.sent == [envs[1]["event_id"], envs[2]["event_id"]]


def test_many_documents_are_relayed_at_once_each_in_its_own_order(db):
    per_doc = {f"ven_{i}": [event("venues.venue_registered", {**VENUE, "venue_id": f"ven_{i}"})
                            for _ in range(3)] for i in range(30)}
    for doc_id, envs in per_doc.items():
        db.venues.insert_one(with_events({"_id": doc_id}, envs[0]))
        db.venues.update_one({"_id": doc_id}, add_events({"$set": {"x": 1}}, *envs[1:]))
    recorder = Recorder()
    relay = _relay(db, recorder)
    assert relay.relay_once() == 90
    assert len(recorder.sent) == len(set(recorder.sent)) == 90
    position = {event_id: n for n, event_id in enumerate(recorder.sent)}
    for envs in per_doc.values():  # interleaved across documents, in order within each
        assert [position[e["event_id"]] for e in envs] == \
            sorted(position[e["event_id"]] for e in envs)
    assert db.venues.count_documents({"outbox_pending": {"$gt": 0}}) == 0
    assert db.venues.count_documents({"outbox_lease": {"$exists": True}}) == 0
    assert relay.relay_once() == 0 and len(recorder.sent) == 90


class FailsFor(Recorder):
    """Refuses the events of one venue, as a broker error in the middle of a pass would."""

    def __init__(self, venue_id):
        super().__init__()
        self.venue_id = venue_id

    def publish(self, envelope):
        if envelope["data"]["venue_id"] == self.venue_id:
            raise OSError("broker went away")
        return super().publish(envelope)


def test_one_failing_document_leaves_the_others_marked_and_itself_pending(db):
    for i in range(10):
        registered = event("venues.venue_registered", {**VENUE, "venue_id": f"ven_{i}"})
        db.venues.insert_one(with_events({"_id": f"ven_{i}"}, registered))
    relay = _relay(db, FailsFor("ven_3"))
    with pytest.raises(OSError):  # the failure surfaces after the pass
        relay.relay_once()
    assert len(relay.publisher.sent) == 9
    stuck = db.venues.find_one({"_id": "ven_3"})
    assert stuck["outbox_pending"] == 1 and "outbox_lease" not in stuck
    assert db.venues.count_documents({"outbox_pending": {"$gt": 0}}) == 1
    relay.publisher = Recorder()
    assert relay.relay_once() == 1


def test_a_leased_document_is_left_to_its_owner(db):
    db.venues.insert_one(with_events({"_id": "ven_1"}, event("venues.venue_registered", VENUE)))
    first, second = Recorder(), Recorder()
    a, b = _relay(db, first), _relay(db, second)
    assert a._lease(db.venues, "ven_1") is not None
    assert b.relay_once() == 0 and second.sent == []
    db.venues.update_one({"_id": "ven_1"}, {"$unset": {"outbox_lease": "", "outbox_owner": ""}})
    assert b.relay_once() == 1


class SlowBroker(Recorder):
    """Each confirm takes `seconds` of the relay's (stand-in) clock."""

    def __init__(self, clock, seconds):
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def publish(self, envelope):
        self.clock[0] += self.seconds
        return super().publish(envelope)


def test_a_relay_stops_before_its_lease_runs_out_and_leaves_the_rest_in_order(db):
    envs = [event("venues.venue_registered", VENUE) for _ in range(4)]
    db.venues.insert_one(with_events({"_id": "ven_1"}, *envs))
    now = [0.0]
    slow = SlowBroker(now, seconds=6)  # two confirms outlast LEASE_S - LEASE_MARGIN_S
    relay = _relay(db, slow)
    relay.monotonic = lambda: now[0]
    assert relay.relay_once() == 2
    doc = db.venues.find_one({"_id": "ven_1"})
    assert doc["outbox_pending"] == 2 and "outbox_lease" not in doc
    slow.seconds = 0
    assert relay.relay_once() == 2
    assert slow.sent == [e["event_id"] for e in envs]


def test_relay_finds_outbox_collections_by_their_index(mongo_url):
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    try:
        db = client["relaytest_things"]
        db.with_outbox.create_index("outbox_pending")
        db.without.insert_one({"x": 1})
        relay = Relay(Settings(mongo_url=mongo_url, db_prefix="relaytest"), client=client,
                      publisher=Recorder())
        assert [c.name for c in relay.sources()] == ["with_outbox"]
    finally:
        client.drop_database("relaytest_things")
        client.close()
