from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kit import clock
from services.kit.events import EventInFlight, Ledger


def test_an_event_is_applied_once(db):
    ledger = Ledger(db.applied_events)
    assert ledger.begin("svc.handler", "e1") is True
    with pytest.raises(EventInFlight):
        ledger.begin("svc.handler", "e1")  # another worker holds it right now
    ledger.finish("svc.handler", "e1")
    assert ledger.begin("svc.handler", "e1") is False
    assert db.applied_events.find_one({"_id": "svc.handler:e1"})["repeats"] == 1
    assert ledger.begin("other.handler", "e1") is True  # each handler keeps its own record


def test_a_failed_attempt_can_be_retried(db):
    ledger = Ledger(db.applied_events)
    assert ledger.begin("svc.h", "e2")
    ledger.abandon("svc.h", "e2")
    assert ledger.begin("svc.h", "e2")


def test_a_dead_workers_lease_is_taken_over(db):
    ledger = Ledger(db.applied_events)
    assert ledger.begin("svc.h", "e3")
    db.applied_events.update_one({"_id": "svc.h:e3"},
                                 {"$set": {"lease_until": clock.stamp(clock.parse(
                                     "2020-01-01T00:00:00Z"))}})
    assert ledger.begin("svc.h", "e3") is True


def test_applied_records_expire_after_thirty_days_by_a_ttl_index(db):
    ledger = Ledger(db.applied_events)
    ledger.ensure_indexes()
    ttl = [i for i in db.applied_events.list_indexes() if "expireAfterSeconds" in i]
    assert [(list(i["key"]), i["expireAfterSeconds"]) for i in ttl] == [(["expires_at"], 0)]
    ledger.begin("svc.h", "e9")
    ledger.finish("svc.h", "e9")
    expires = db.applied_events.find_one({"_id": "svc.h:e9"})["expires_at"]
    assert isinstance(expires, datetime)  # a BSON datetime, as a TTL index needs
    assert timedelta(days=29) < expires - datetime.now(UTC) <= Ledger.KEEP
