"""The relay's bookkeeping against a real nx-27017, with the broker replaced by a recorder."""

from __future__ import annotations

import threading
from collections import Counter

import pymongo
import pytest

from services.kit import clock
from services.kit import relay as relay_module
from services.kit.config import Settings
from services.kit.metrics import CommandCounter, Counts
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
    assert a._lease_one(db.venues, "another relay", {"_id": "ven_1"})
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


def test_an_expired_lease_is_taken_over(db):
    envs = [event("venues.venue_registered", VENUE) for _ in range(2)]
    db.venues.insert_one(with_events({"_id": "ven_1"}, *envs))
    db.venues.update_one({"_id": "ven_1"}, {"$set": {"outbox_lease": clock.later(-60),
                                                     "outbox_owner": "a relay that died"}})
    recorder = Recorder()
    assert _relay(db, recorder).relay_once() == 2
    assert recorder.sent == [e["event_id"] for e in envs]
    doc = db.venues.find_one({"_id": "ven_1"})
    assert doc["outbox_pending"] == 0 and "outbox_owner" not in doc


def test_a_long_outbox_and_a_full_batch_are_marked_in_parts(db):
    """nx-27017 ignores an `$unset` of more than ~126 paths (kit/mongo.py): marks are split."""
    envs = [event("venues.venue_registered", VENUE) for _ in range(230)]
    db.venues.insert_one(with_events({"_id": "long"}, *envs))
    db.venues.insert_many([with_events({"_id": f"ven_{i}"}, event(
        "venues.venue_registered", {**VENUE, "venue_id": f"ven_{i}"})) for i in range(150)])
    recorder = Recorder()
    relay = _relay(db, recorder)
    while relay.relay_once():
        pass
    assert len(recorder.sent) == len(set(recorder.sent)) == 380
    long_sent = [e for e in recorder.sent if e in {env["event_id"] for env in envs}]
    assert long_sent == [e["event_id"] for e in envs]
    assert db.venues.count_documents({"outbox_pending": {"$ne": 0}}) == 0
    assert db.venues.count_documents({"outbox_lease": {"$exists": True}}) == 0
    assert db.venues.find_one({"_id": "long"})["outbox"] == {}


def test_two_relays_leasing_batches_at_once_publish_each_event_once(db):
    for i in range(60):
        envs = [event("venues.venue_registered", {**VENUE, "venue_id": f"ven_{i}"})
                for _ in range(2)]
        db.venues.insert_one(with_events({"_id": f"ven_{i}"}, *envs))
    recorders = [Recorder(), Recorder()]
    relays = [_relay(db, r) for r in recorders]
    start = threading.Barrier(2)

    def race(relay):
        start.wait()
        while relay.relay_once():
            pass

    threads = [threading.Thread(target=race, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = recorders[0].sent + recorders[1].sent
    assert len(sent) == len(set(sent)) == 120
    assert db.venues.count_documents({"outbox_pending": {"$ne": 0}}) == 0


# -- what the relay costs the database (issue 18) -------------------------------------

@pytest.fixture()
def counted(db, mongo_url):
    """A relay whose client counts every command it sends, by command name."""
    counts = Counts()
    client = pymongo.MongoClient(mongo_url, tz_aware=True,
                                 event_listeners=[CommandCounter(counts)])
    db.venues.create_index("outbox_pending")
    db.sessions.create_index("outbox_pending")
    relay = Relay(Settings(mongo_url=mongo_url, db_prefix=db.name.split("_")[0]),
                  client=client, publisher=Recorder())
    now = [1000.0]
    relay.monotonic = lambda: now[0]

    def commands():
        """Commands to this test's database since the last call, by name."""
        snapshot = Counter({name.split(".", 1)[1]: n for name, n in counts.snapshot()["db"]
                            .items() if name.split(".", 1)[0] in (db.name, "admin")})
        done = snapshot - counted.seen
        counted.seen = snapshot
        return done

    counted.seen = Counter()
    yield relay, now, commands
    client.close()


def _venue(i):
    return with_events({"_id": f"ven_{i}"}, event("venues.venue_registered",
                                                  {**VENUE, "venue_id": f"ven_{i}"}))


def test_a_burst_costs_four_commands_per_batch(db, counted):
    relay, _now, commands = counted
    relay.sources()
    commands()
    db.venues.insert_many([_venue(i) for i in range(60)])
    assert relay.relay_once() == 60
    cost = commands()
    # find the ids, lease them (update_many), read them back, mark them (update_many);
    # the other source's poll finds nothing
    assert cost == Counter(find=3, update=2), cost
    assert sum(cost.values()) / 60 <= 0.1


def test_a_lone_event_costs_a_lease_and_a_mark(db, counted):
    relay, now, commands = counted
    relay.tick()  # lists the sources, polls both
    commands()
    db.venues.insert_one(_venue(1))
    now[0] += 0.5  # before the next listing (1 s after the first)
    assert relay.tick() == 1
    assert commands() == Counter(findAndModify=2, update=1)  # + the empty source's poll
    now[0] += relay_module.POLL_MIN_S
    relay.tick()  # the busy source looks for a batch: nothing
    assert commands() == Counter(find=1)


def test_an_idle_relay_backs_off_and_still_relays_the_first_event_within_a_second(db, counted):
    relay, now, commands = counted
    started, rounds = now[0], 0
    while now[0] - started < 120:  # two idle minutes, round by round as `run` waits
        relay.tick()
        rounds += 1
        now[0] += relay.next_wait()
    idle = commands()
    polls = idle["findAndModify"] + idle["find"]
    listings = idle["listDatabases"]
    print(f"\nidle: {sum(idle.values())} commands in {rounds} rounds over 120 s: {dict(idle)}")
    # two sources polled at most once a second once backed off (~6 polls each to get there)
    assert polls <= 2 * (120 / relay_module.POLL_WARM_S + 6)
    assert listings <= 8  # at 0, 1, 3, 7, 15, 31, 63 s, then every minute
    assert sum(idle.values()) / 120 <= 3

    db.venues.insert_one(_venue(1))
    written = now[0]
    while not relay.tick():
        now[0] += relay.next_wait()
    assert now[0] - written <= relay_module.POLL_WARM_S

    now[0] += relay_module.WARM_S + 60  # ten quiet minutes: the cold cap
    commands()
    started = now[0]
    while now[0] - started < 120:
        relay.tick()
        now[0] += relay.next_wait()
    cold = commands()
    print(f"cold: {sum(cold.values())} commands over 120 s: {dict(cold)}")
    # from 50 ms (the event) to the cap takes at most seven polls, then one per source per cap
    assert cold["findAndModify"] + cold["find"] <= 2 * (120 / relay_module.POLL_COLD_S + 7)
    assert sum(cold.values()) / 120 <= 2 / relay_module.POLL_COLD_S + 0.5  # two sources


def test_a_collection_indexed_just_after_it_appeared_is_found_and_known_ones_not_relisted(
        db, counted):
    relay, now, commands = counted
    db.late.insert_one({"_id": "x"})  # a service mid-way through creating its indexes
    assert sorted(c.name for c in relay.sources()) == ["sessions", "venues"]
    db.late.create_index("outbox_pending")
    commands()
    now[0] += relay_module.DISCOVER_FIRST_S
    assert sorted(c.name for c in relay.sources()) == ["late", "sessions", "venues"]
    assert commands()["listIndexes"] == 1  # only the new collection's
    now[0] += relay_module.DISCOVER_S
    relay.sources()
    assert commands() == Counter(listDatabases=1, listCollections=1)


def test_a_stopped_relay_publishes_what_is_pending_before_it_exits(db, counted):
    relay, _now, _commands = counted
    db.venues.insert_many([_venue(i) for i in range(3)])
    relay.stopping.set()  # SIGTERM before its first round
    relay.run()
    assert len(relay.publisher.sent) == 3
    assert db.venues.count_documents({"outbox_pending": {"$ne": 0}}) == 0
