"""What folding costs in database commands (issue 18), and that the cheaper fold loses nothing.

A handler's one write is the archive insert; the fold of a whole batch of claim events
is three commands (the pending read, one `bulk_write`, the fold stamp).
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from types import SimpleNamespace

import pymongo
import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from services.kit.events import APPLIED, Delivery, Ledger
from services.kit.metrics import CommandCounter, Counts
from services.monitoring.archive import FAILED
from services.monitoring.facts import Facts
from services.monitoring.operations import set_aside
from services.monitoring.repository import MonitoringRepository
from services.monitoring.service import MonitoringService
from services.monitoring.simulation import district

HOT = {"booking.claim_confirmed", "booking.claim_waitlisted", "booking.claim_cancelled"}


def claim_events() -> list[dict]:
    """A burst's claim events: confirmed, some waitlisted first, some cancelled."""
    world = district(schools=8, sessions=10, claims=60, pupils_per_school=200)
    for claim in world.claims[::3]:
        claim.waitlisted_first = True
    events = [e for e in world.envelopes() if e["type"] in HOT]
    assert {e["type"] for e in events} == HOT
    return events


@pytest.fixture()
def counted(mongo_url: str):
    """A monitoring repository whose client counts every command it sends."""
    counts = Counts()
    client = pymongo.MongoClient(mongo_url, tz_aware=True,
                                 event_listeners=[CommandCounter(counts)])
    name = f"unit_mon_{uuid.uuid4().hex[:10]}"
    repo = MonitoringRepository(client[name])
    repo.ensure_indexes()

    def spent(action) -> Counter:
        before = Counter(counts.snapshot()["db"])
        action()
        return Counter(counts.snapshot()["db"]) - before

    yield repo, spent
    client.drop_database(name)
    client.close()


def handlers() -> dict[str, tuple[str, object]]:
    """{event type: (method name, the decorated handler)} of the service."""
    return {ext.full_type: (name, attr) for name, attr in vars(MonitoringService).items()
            for ext in getattr(attr, ENTRYPOINT_EXTENSIONS_ATTR, ())
            if hasattr(ext, "full_type")}


def deliver(repo: MonitoringRepository, envelope: dict) -> None:
    """One delivery through the service's handler, as the subscriber calls it."""
    name, handler = handlers()[envelope["type"]]
    ledger = Ledger(repo.db[APPLIED])
    handler(SimpleNamespace(store=repo), envelope,
            _delivery=Delivery(ledger, f"monitoring.{name}", envelope))


def test_a_claim_event_costs_one_insert_and_its_batch_three_commands(counted):
    repo, spent = counted
    events = claim_events()
    handled = spent(lambda: [deliver(repo, e) for e in events])
    db = repo.db.name
    assert handled == Counter({f"{db}.insert": len(events)})  # one write each, no ledger
    assert repo.db[APPLIED].count_documents({}) == 0
    folded = spent(repo.fold_pending)
    # the pending read, one bulk_write of every claim, the fold stamp
    assert folded == Counter({f"{db}.find": 1, f"{db}.update": 2})
    per_event = (sum(handled.values()) + sum(folded.values())) / len(events)
    assert per_event <= 1 + 3 / len(events)
    assert repo.db.archive.count_documents({"folded_at": 0}) == 0


def test_a_redelivery_costs_at_most_two_commands_and_changes_nothing(counted):
    repo, spent = counted
    events = claim_events()
    for e in events:
        deliver(repo, e)
    repo.fold_pending()
    claims = list(repo.db.claims.find({}, sort=[("_id", 1)]))
    archive = list(repo.db.archive.find({}, sort=[("_id", 1)]))
    again = spent(lambda: deliver(repo, events[5]))
    assert sum(again.values()) <= 2  # the duplicate insert, and a no-op update
    assert repo.fold_pending() == 0
    assert list(repo.db.claims.find({}, sort=[("_id", 1)])) == claims
    assert list(repo.db.archive.find({}, sort=[("_id", 1)])) == archive


def test_a_batch_folds_claims_as_folding_them_one_by_one_does(repos):
    events = claim_events()
    one_by_one, batched = repos(), repos()
    for e in events:
        Facts(one_by_one.db).fold(e)
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    for e in shuffled:
        batched.consume(e)
    assert batched.fold_pending() == len(events)
    assert (list(batched.db.claims.find({}, sort=[("_id", 1)]))
            == list(one_by_one.db.claims.find({}, sort=[("_id", 1)])))


def test_a_crash_between_the_facts_and_the_fold_stamp_folds_the_batch_again(repos,
                                                                            monkeypatch):
    events = claim_events()
    repo, reference = repos(), repos()
    for e in events:
        repo.consume(e)
        reference.consume(e)
    reference.fold_pending()

    def crash(*_):
        raise RuntimeError("the process died here")

    with monkeypatch.context() as patched:
        patched.setattr(repo.archive, "mark_folded", crash)
        with pytest.raises(RuntimeError):
            repo.fold_pending()
    assert repo.db.archive.count_documents({"folded_at": 0}) == len(events)
    assert repo.fold_pending() == len(events)
    assert (list(repo.db.claims.find({}, sort=[("_id", 1)]))
            == list(reference.db.claims.find({}, sort=[("_id", 1)])))


def test_an_event_its_fold_cannot_read_is_set_aside_and_the_rest_are_folded(repos):
    events = claim_events()
    confirmed = next(e for e in events if e["type"] == "booking.claim_confirmed")
    broken = {**confirmed, "event_id": "evt-broken", "data": {**confirmed["data"], "trip": None}}
    repo = repos()
    for e in [broken, *events]:
        repo.consume(e)
    assert repo.fold_pending() == len(events)
    aside = repo.db.archive.find_one({"_id": "evt-broken"})
    assert aside["folded_at"] == FAILED and "TypeError" in aside["fold_error"]
    assert repo.fold_pending() == 0
    assert repo.db.claims.count_documents({}) == len({e["data"]["claim_id"] for e in events})
    # and `kepu monitoring check` names it
    [line] = set_aside(repo)
    assert line.startswith("event evt-broken (booking.claim_confirmed) set aside, not folded: ")
    assert "TypeError" in line
