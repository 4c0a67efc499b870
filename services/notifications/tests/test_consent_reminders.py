"""Consent reminders (the school asks) and consent progress (counts only, for the venue)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed
from services.notifications import consent_progress, rosters
from services.notifications.consent_reminders import ConsentReminders
from services.notifications.delivery import Delivery
from services.notifications.settings import NotifySettings
from services.notifications.tests.factories import cancelled, confirmed, pupils
from services.notifications.triggers import Triggers

SECRET = "unit-secret-for-consent-links-0123456789"
SCHOOL = Actor("usr_t", "school", "sch_1")


class Recorder:
    def __init__(self) -> None:
        self.sent = []

    def send(self, outgoing):
        self.sent.append(outgoing)
        return f"p-{len(self.sent)}"

    def close(self):
        pass


@pytest.fixture()
def channels():
    return {name: Recorder() for name in ("email", "sms", "wechat")}


@pytest.fixture()
def triggers(repo, channels, frozen):
    settings = NotifySettings.from_env({"KEPU_PUBLIC_URL": "http://kepu.test"})
    return Triggers(Delivery(repo, channels, settings), SECRET)


@pytest.fixture()
def reminders(triggers):
    return ConsentReminders(triggers)


def confirm(repo, triggers, claim_id="clm_1", count=3, channel="email"):
    repo.replace_roster(rosters.build_document("sch_1", "五年级(1)班",
                                               pupils(count, channel=channel)))
    triggers.claim_confirmed(confirmed(claim_id), f"evt_{claim_id}")


def answer(repo, claim_id, pupil_id, value="yes"):
    assert repo.add_consent({"_id": f"{claim_id}|{pupil_id}|0001", "claim_id": claim_id,
                             "pupil_id": pupil_id, "school_id": "sch_1", "label": "五年级(1)班",
                             "seq": 1, "answer": value, "answered_at": "2026-11-23T02:00:00Z"})


def pupil_ids(repo):
    return [p["pupil_id"] for p in repo.rosters_of("sch_1")[0]["pupils"]]


def reminded(repo, claim_id="clm_1"):
    return [m for m in repo.db.messages.find({"claim_id": claim_id, "kind": "consent_reminder"})]


def test_reminds_only_the_guardians_of_pupils_without_an_answer(repo, triggers, reminders,
                                                               channels):
    confirm(repo, triggers)
    first, second, _third = pupil_ids(repo)
    answer(repo, "clm_1", first, "yes")
    answer(repo, "clm_1", second, "no")
    before = len(channels["email"].sent)
    result = reminders.remind(SCHOOL, "clm_1")
    assert (result["pupils"], result["messages"], result["deferred"]) == (1, 1, 0)
    assert result["next_at"] > result["reminded_at"]
    assert len(channels["email"].sent) == before + 1
    assert "http://kepu.test/v1/consents/" in channels["email"].sent[-1].text
    assert [m["pupil_id"] for m in reminded(repo)] == [_third]


def test_a_second_reminder_within_12_hours_is_refused_then_allowed(repo, triggers, reminders,
                                                                  frozen):
    confirm(repo, triggers)
    reminders.remind(SCHOOL, "clm_1")
    with pytest.raises(TooManyRequests) as refused:
        reminders.remind(SCHOOL, "clm_1")
    assert refused.value.code == "consent-reminder-too-soon"
    assert 0 < refused.value.retry_after <= 12 * 3600 + 1
    assert len(reminded(repo)) == 3
    frozen.advance(hours=12, seconds=1)
    again = reminders.remind(SCHOOL, "clm_1")
    assert again["messages"] == 3 and len(reminded(repo)) == 6  # a new scope: sent again


def test_retry_with_the_same_key_answers_the_first_reminder_and_sends_nothing_more(
        repo, triggers, reminders, channels):
    confirm(repo, triggers)
    first = reminders.remind(SCHOOL, "clm_1", "key-1")
    sent = len(channels["email"].sent)
    assert reminders.remind(SCHOOL, "clm_1", "key-1") == first
    assert len(channels["email"].sent) == sent and len(reminded(repo)) == 3


def test_quiet_hours_hold_sms_until_morning(repo, triggers, reminders, channels, frozen):
    confirm(repo, triggers, channel="sms")
    sent = len(channels["sms"].sent)
    frozen.set(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))  # 22:00 in Shanghai
    result = reminders.remind(SCHOOL, "clm_1")
    assert result["deferred"] == 3
    assert {m["status"] for m in reminded(repo)} == {"deferred"}
    assert len(channels["sms"].sent) == sent


def test_refusals_are_named(repo, triggers, reminders):
    with pytest.raises(NotFound):
        reminders.remind(SCHOOL, "clm_unknown")
    confirm(repo, triggers)
    with pytest.raises(Forbidden):
        reminders.remind(Actor("usr_x", "school", "sch_2"), "clm_1")
    with pytest.raises(Forbidden):
        reminders.remind(Actor("usr_v", "venue", "ven_1"), "clm_1")
    for pid in pupil_ids(repo):
        answer(repo, "clm_1", pid)
    with pytest.raises(Conflict) as nobody:
        reminders.remind(SCHOOL, "clm_1")
    assert nobody.value.code == "consent-nothing-to-remind"
    triggers.claim_cancelled(cancelled("clm_1"), "evt_c")
    with pytest.raises(Conflict) as gone:
        reminders.remind(SCHOOL, "clm_1")
    assert gone.value.code == "claim-cancelled"


def test_progress_gives_the_venue_counts_of_its_claims_only(repo, triggers):
    confirm(repo, triggers)
    triggers.claim_confirmed(confirmed("clm_2", venue_id="ven_2"), "evt_2")
    first = pupil_ids(repo)[0]
    answer(repo, "clm_1", first, "no")
    venue = Actor("usr_v", "venue", "ven_1")
    result = consent_progress.progress(repo, venue, ["clm_2", "clm_1", "clm_nope"])
    assert result["items"] == [{"claim_id": "clm_1", "claim_status": "confirmed",
                                "summary": {"pupils": 3, "yes": 0, "no": 1, "pending": 2}}]
    school = consent_progress.progress(repo, SCHOOL, ["clm_1", "clm_2"])
    assert [i["claim_id"] for i in school["items"]] == ["clm_1", "clm_2"]
    assert consent_progress.progress(repo, Actor("usr_o", "school", "sch_9"),
                                     ["clm_1"])["items"] == []
    with pytest.raises(Forbidden):
        consent_progress.progress(repo, Actor("usr_f", "finance", "dst_1"), ["clm_1"])


def test_claim_ids_are_checked():
    assert consent_progress.claim_ids(" a, b,a ,") == ["a", "b"]
    for bad in ("", " , ", ",".join(f"c{i}" for i in range(101)), "x" * 65):
        with pytest.raises(ValidationFailed):
            consent_progress.claim_ids(bad)
