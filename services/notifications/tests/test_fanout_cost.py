"""What one confirmed claim costs the database, counted, and why the fan-out needs no ledger.

The handler is the service's own decorated `on_claim_confirmed` (as `kit.events.subscribe`
wraps it), run against a client that counts every command with the bench's pymongo
`CommandListener` (services/kit/metrics.py). The bound of issue 18: at most 3 commands per
confirmed claim plus 1 per batch of messages.
"""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace

import eventlet
import pymongo
import pytest

from services.kit.config import Settings
from services.kit.events import Delivery as EventDelivery
from services.kit.events import Ledger
from services.kit.metrics import CommandCounter, Counts
from services.notifications import rosters
from services.notifications.delivery import Delivery
from services.notifications.repository import NotificationsRepository
from services.notifications.service import NotificationsService
from services.notifications.settings import NotifySettings
from services.notifications.tests.factories import confirmed, pupils
from services.notifications.triggers import Triggers

SECRET = "unit-secret-for-consent-links-0123456789"
GUARDIANS = 40
LABEL = "五年级(1)班"


class Recorder:
    """A channel that records what it sends; `during_send` runs once, inside the first send."""

    def __init__(self) -> None:
        self.sent: list = []
        self.during_send = None

    def send(self, outgoing):
        hook, self.during_send = self.during_send, None
        if hook is not None:
            hook()
        self.sent.append(outgoing)
        return f"prov-{len(self.sent)}"

    def close(self):
        pass


class Counted:
    """The test's database seen through a second client whose commands are counted."""

    def __init__(self, mongo_url: str, name: str) -> None:
        self.counts = Counts()
        self.client = pymongo.MongoClient(mongo_url, tz_aware=True,
                                          event_listeners=[CommandCounter(self.counts)])
        self.db = self.client[name]
        self.name = name
        self.seen: Counter[str] = Counter()

    def commands(self) -> Counter[str]:
        """This database's commands since the last call, by command name."""
        prefix = f"{self.name}."
        now = Counter({k[len(prefix):]: v for k, v in self.counts.snapshot()["db"].items()
                       if k.startswith(prefix)})
        seen, self.seen = self.seen, now
        return now - seen


@pytest.fixture()
def counted(db, mongo_url):
    found = Counted(mongo_url, db.name)
    yield found
    found.client.close()


@pytest.fixture()
def settings():
    return NotifySettings.from_env({"KEPU_PUBLIC_URL": "http://kepu.test"})


@pytest.fixture()
def email():
    return Recorder()


@pytest.fixture()
def service(counted, settings, email, frozen):
    """What the handler's `self` offers it: `triggers()` over the counted database, sending
    on a green pool as the service does."""
    repo = NotificationsRepository(counted.db, Settings(jwt_secret="unit"))
    repo.ensure_indexes()
    channels = {"email": email, "sms": Recorder(), "wechat": Recorder()}

    def triggers() -> Triggers:
        pool = eventlet.GreenPool(settings.concurrency)
        return Triggers(Delivery(repo, channels, settings, pool.imap), SECRET)

    repo.replace_roster(rosters.build_document("sch_1", LABEL, pupils(GUARDIANS)))
    counted.commands()  # setup is not the handler's cost
    return SimpleNamespace(triggers=triggers, repo=repo, db=counted.db)


def deliver(service, event_id: str = "evt_1") -> None:
    """One delivery of `booking.claim_confirmed` to the service's subscribed handler."""
    event = {"event_id": event_id, "type": "booking.claim_confirmed", "data": confirmed()}
    handler = "notifications.on_claim_confirmed"
    NotificationsService.on_claim_confirmed(
        service, event,
        _delivery=EventDelivery(Ledger(service.db.applied_events), handler, event))


def sent_to(email: Recorder) -> Counter[str]:
    return Counter(o.recipient for o in email.sent)


def test_a_confirmed_claim_costs_3_commands_plus_1_per_batch_of_messages(
        service, counted, settings, email):
    deliver(service)
    batches = math.ceil(GUARDIANS / settings.concurrency)
    assert counted.commands() == Counter({
        "insert": 2,  # the claim record; every guardian's message in one insert_many
        "find": 1,  # the school's rosters
        "update": batches,  # the send records, one bulk write per batch
    })
    assert len(email.sent) == GUARDIANS and set(sent_to(email).values()) == {1}
    assert service.db.applied_events.count_documents({}) == 0  # no ledger: the insert is it
    statuses = Counter(m["status"] for m in service.db.messages.find())
    assert statuses == Counter({"sent": GUARDIANS})


def test_a_repeated_event_reads_and_stores_nothing_new_and_sends_nothing(
        service, counted, email):
    deliver(service)
    counted.commands()
    deliver(service)
    deliver(service, "evt_copy_with_another_id")
    assert counted.commands() == Counter({"insert": 4, "find": 4})  # 2 × claim, roster, msgs
    assert len(email.sent) == GUARDIANS and set(sent_to(email).values()) == {1}


def test_a_concurrent_duplicate_sends_nothing_the_first_worker_stored(service, email):
    email.during_send = lambda: deliver(service)  # the copy runs while the first one sends
    deliver(service)
    assert len(email.sent) == GUARDIANS and set(sent_to(email).values()) == {1}
    assert Counter(m["status"] for m in service.db.messages.find()) == \
        Counter({"sent": GUARDIANS})


class Crash(BaseException):
    """The worker's process died here."""


def test_after_a_crash_between_storing_and_sending_each_guardian_hears_once(
        service, settings, email, frozen, monkeypatch):
    def die(self, docs):
        raise Crash

    with monkeypatch.context() as patched:
        patched.setattr(Delivery, "send_all", die)
        with pytest.raises(Crash):
            deliver(service)
    assert email.sent == []
    deliver(service)  # the broker redelivers: every message is a duplicate, still leased
    assert email.sent == []
    triggers = service.triggers()
    assert triggers.delivery.deliver_due() == {}  # the dead worker's lease still holds
    frozen.advance(seconds=settings.lease_s + 1)
    assert triggers.delivery.deliver_due() == {"sent": GUARDIANS}
    deliver(service)
    assert triggers.delivery.deliver_due() == {}
    assert len(email.sent) == GUARDIANS and set(sent_to(email).values()) == {1}


def test_due_messages_are_leased_in_three_commands_plus_1_per_batch(
        service, counted, settings, email, frozen):
    def refuse():
        raise RuntimeError("smtp down")

    email.send = lambda outgoing: refuse()
    deliver(service)
    assert Counter(m["status"] for m in service.db.messages.find()) == \
        Counter({"queued": GUARDIANS})  # each to be retried
    del email.send
    frozen.advance(milliseconds=settings.retry_delays_ms[0] + 1)
    counted.commands()
    triggers = service.triggers()
    assert triggers.delivery.deliver_due() == {"sent": GUARDIANS}
    batches = math.ceil(GUARDIANS / settings.concurrency)
    assert counted.commands() == Counter({"find": 2, "update": 1 + batches})
    assert triggers.delivery.deliver_due() == {}
    assert set(sent_to(email).values()) == {1}
    assert all(m["attempts"] == 2 for m in service.db.messages.find())
