"""Each trigger, with a recording channel: who hears what, and never twice."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.kit.actor import Actor
from services.kit.errors import Forbidden
from services.notifications import rosters
from services.notifications.delivery import Delivery
from services.notifications.settings import NotifySettings
from services.notifications.tests.factories import TRIP, cancelled, confirmed, pupils
from services.notifications.triggers import Triggers

SECRET = "unit-secret-for-consent-links-0123456789"


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = []

    def send(self, outgoing):
        self.sent.append(outgoing)
        return f"{self.name}-{len(self.sent)}"

    def close(self):
        pass


@pytest.fixture()
def channels():
    return {name: Recorder(name) for name in ("email", "sms", "wechat")}


@pytest.fixture()
def triggers(repo, channels, frozen):
    settings = NotifySettings.from_env({"KEPU_PUBLIC_URL": "http://kepu.test"})
    return Triggers(Delivery(repo, channels, settings), SECRET)


def upload(repo, label, count, start=0, school="sch_1", channel="email"):
    repo.replace_roster(rosters.build_document(school, label,
                                               pupils(count, start, channel=channel)))


def kinds(repo, claim_id="clm_1"):
    found = {}
    for doc in repo.db.messages.find({"claim_id": claim_id}):
        found[doc["kind"]] = found.get(doc["kind"], 0) + 1
    return found


def test_confirmed_claim_reaches_every_guardian_of_its_classes_once(repo, triggers, channels):
    upload(repo, "五年级(1)班", 3)
    upload(repo, "五年级(2)班", 2, start=3)
    upload(repo, "五年级(3)班", 4, start=5)  # not on this claim
    upload(repo, "五年级(1)班", 5, school="sch_2")  # same label, another school
    data = confirmed(labels=("五年级(1)班", "五年级(2)班", "六年级(1)班"))
    assert triggers.claim_confirmed(data, "evt_1") == {"sent": 5}
    assert len(channels["email"].sent) == 5
    assert triggers.claim_confirmed(data, "evt_1") == {}
    assert triggers.claim_confirmed(data, "evt_other_copy") == {}
    assert len(channels["email"].sent) == 5 and kinds(repo) == {"confirmed": 5}
    assert all("http://kepu.test/v1/consents/" in o.text for o in channels["email"].sent)


def test_venue_cancellation_tells_parents_once_whichever_event_comes_first(repo, triggers,
                                                                           channels):
    upload(repo, "五年级(1)班", 2)
    upload(repo, "五年级(2)班", 2, start=2)
    triggers.claim_confirmed(confirmed("clm_1"), "evt_1")
    triggers.claim_confirmed(confirmed("clm_2", labels=("五年级(2)班",)), "evt_2")
    triggers.claim_cancelled(cancelled("clm_2", labels=("五年级(2)班",)), "evt_3")  # school
    assert kinds(repo, "clm_2") == {"confirmed": 2, "cancelled": 2}
    session = {"session_id": TRIP["session_id"], "venue_id": "ven_1", "reason": "设备检修",
               "starts_at": TRIP["starts_at"]}
    assert triggers.session_cancelled(session, "evt_4") == {"sent": 2}
    assert triggers.claim_cancelled(cancelled("clm_1", by="venue", reason="设备检修"),
                                    "evt_5") == {}
    assert triggers.session_cancelled(session, "evt_4") == {}
    assert kinds(repo, "clm_1") == {"confirmed": 2, "cancelled": 2}
    assert kinds(repo, "clm_2") == {"confirmed": 2, "cancelled": 2}
    assert "设备检修" in channels["email"].sent[-1].text
    assert repo.claim("clm_1")["status"] == "cancelled"


def test_claim_cancelled_first_then_session_cancelled(repo, triggers):
    upload(repo, "五年级(1)班", 2)
    triggers.claim_confirmed(confirmed("clm_1"), "evt_1")
    triggers.claim_cancelled(cancelled("clm_1", by="venue"), "evt_2")
    triggers.session_cancelled({"session_id": TRIP["session_id"], "venue_id": "ven_1",
                                "reason": "x", "starts_at": TRIP["starts_at"]}, "evt_3")
    assert kinds(repo) == {"confirmed": 2, "cancelled": 2}


def test_claims_parents_never_heard_of_stay_silent(repo, triggers, channels):
    upload(repo, "五年级(1)班", 2)
    assert triggers.claim_cancelled(cancelled("clm_9", previous="waitlisted"), "evt_1") == {}
    # cancelled before the confirmation arrived: the late confirmation is not sent
    triggers.claim_cancelled(cancelled("clm_8"), "evt_2")
    assert triggers.claim_confirmed(confirmed("clm_8"), "evt_3") == {}
    assert kinds(repo, "clm_8") == {"cancelled": 2}
    assert kinds(repo, "clm_9") == {}


def test_each_reschedule_is_news_once(repo, triggers, channels):
    upload(repo, "五年级(1)班", 2)
    triggers.claim_confirmed(confirmed(), "evt_1")
    change = {"session_id": TRIP["session_id"], "venue_id": "ven_1",
              "previous_starts_at": TRIP["starts_at"], "previous_ends_at": TRIP["ends_at"],
              "starts_at": "2026-11-29T06:00:00.000000Z",
              "ends_at": "2026-11-29T08:00:00.000000Z", "timezone": "Asia/Shanghai"}
    assert triggers.session_rescheduled(change, "evt_2") == {"sent": 2}
    assert triggers.session_rescheduled(change, "evt_2") == {}
    back = {**change, "previous_starts_at": change["starts_at"],
            "previous_ends_at": change["ends_at"], "starts_at": TRIP["starts_at"],
            "ends_at": TRIP["ends_at"]}
    assert triggers.session_rescheduled(back, "evt_3") == {"sent": 2}
    text = channels["email"].sent[-1].text
    assert "2026年11月28日（星期六）09:30–11:30" in text and "11月29日" in text
    assert kinds(repo) == {"confirmed": 2, "rescheduled": 4}


def test_reminder_goes_24_hours_before_once(repo, triggers, channels, frozen):
    upload(repo, "五年级(1)班", 2)
    triggers.claim_confirmed(confirmed(), "evt_1")  # 2026-11-23 10:00, trip 11-28 09:30
    assert triggers.send_reminders() == 0
    frozen.set(datetime(2026, 11, 27, 1, 29, tzinfo=UTC))
    assert triggers.send_reminders() == 0
    frozen.set(datetime(2026, 11, 27, 1, 30, tzinfo=UTC))
    assert triggers.send_reminders() == 1
    assert triggers.send_reminders() == 0
    assert kinds(repo) == {"confirmed": 2, "reminder": 2}
    assert "提醒" in channels["email"].sent[-1].subject


def test_no_separate_reminder_when_confirmed_within_a_day(repo, triggers, frozen):
    upload(repo, "五年级(1)班", 1)
    frozen.set(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    triggers.claim_confirmed(confirmed(), "evt_1")
    assert repo.claim("clm_1")["reminder"] == "covered"
    assert triggers.send_reminders() == 0


def test_a_roster_uploaded_after_the_claim_reaches_new_guardians(repo, triggers, channels):
    upload(repo, "五年级(1)班", 2)
    triggers.claim_confirmed(confirmed(), "evt_1")
    upload(repo, "五年级(1)班", 3)  # one more pupil
    assert triggers.roster_replaced("sch_1", "五年级(1)班") == 1
    assert len(channels["email"].sent) == 2  # queued for the timer, not sent inline
    assert triggers.delivery.deliver_due() == {"sent": 1}
    assert len(channels["email"].sent) == 3
    assert triggers.roster_replaced("sch_1", "五年级(1)班") == 0


def test_the_delivery_log_pages_through_every_message(repo, triggers):
    from services.notifications import delivery_log

    upload(repo, "五年级(1)班", 40)
    triggers.claim_confirmed(confirmed(), "evt_1")
    school = Actor("t", "school", "sch_1")
    seen, cursor = [], None
    while True:
        page = delivery_log.page(repo, school, {"claim_id": "clm_1", "limit": 15,
                                                "cursor": cursor})
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 40 and len({e["message_id"] for e in seen}) == 40
    assert all(e["recipient"].endswith("***@example.com") and "parent" not in e["recipient"]
               for e in seen)
    assert delivery_log.page(repo, Actor("t2", "school", "sch_2"),
                             {"limit": 50})["items"] == []
    assert all(d["sort_key"].startswith("@") for d in repo.db.messages.find())  # kit.pages
    for stranger in (Actor("a", "admin"), Actor("v", "venue", "sch_1")):
        with pytest.raises(Forbidden):  # guardians' contacts: the school's own staff only
            delivery_log.page(repo, stranger, {"limit": 50})


def test_news_deferred_by_quiet_hours_is_withdrawn_when_the_claim_is_cancelled(
        repo, triggers, channels, frozen):
    upload(repo, "五年级(1)班", 2, channel="sms")
    frozen.set(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))  # 22:00 in Shanghai
    assert triggers.claim_confirmed(confirmed(), "evt_1") == {"deferred": 2}
    triggers.claim_cancelled(cancelled(), "evt_2")
    statuses = sorted((d["kind"], d["status"]) for d in repo.db.messages.find())
    assert statuses == [("cancelled", "deferred")] * 2 + [("confirmed", "suppressed")] * 2
    frozen.set(datetime(2026, 11, 23, 23, 0, tzinfo=UTC))  # 07:00
    assert triggers.delivery.deliver_due() == {"sent": 2}
    assert [o.subject for o in channels["sms"].sent] == [channels["sms"].sent[0].subject] * 2
    assert all("取消" in o.text for o in channels["sms"].sent)


def test_each_guardian_gets_a_link_of_their_own(repo, triggers, channels):
    import re

    from services.notifications import consent
    from services.notifications.tests.factories import guardian

    repo.replace_roster(rosters.build_document("sch_1", "五年级(1)班", [
        {"name": "学生0", "guardians": [guardian("妈妈", 1), guardian("爸爸", 2)]}]))
    assert triggers.claim_confirmed(confirmed(), "evt_1") == {"sent": 2}
    tokens = {o.recipient: re.search(r"/v1/consents/(\S+)", o.text).group(1)
              for o in channels["email"].sent}
    assert len(set(tokens.values())) == 2
    for address, token in tokens.items():
        assert consent.verify(SECRET, token)["contact"] == consent.contact_digest(SECRET,
                                                                                  address)


def test_a_corrected_contact_hears_again_and_only_there(repo, triggers, channels):
    from services.notifications.tests.factories import guardian

    repo.replace_roster(rosters.build_document("sch_1", "五年级(1)班", [
        {"name": "学生0", "guardians": [guardian("妈妈", 1)]}]))
    assert triggers.claim_confirmed(confirmed(), "evt_1") == {"sent": 1}
    assert triggers.roster_replaced("sch_1", "五年级(1)班") == 0  # the same roster again
    fixed = guardian("妈妈", 1, email="mama.fixed@example.com")  # the address was mistyped
    repo.replace_roster(rosters.build_document("sch_1", "五年级(1)班", [
        {"name": "学生0", "guardians": [fixed]}]))
    assert triggers.roster_replaced("sch_1", "五年级(1)班") == 1
    assert triggers.delivery.deliver_due() == {"sent": 1}
    assert [o.recipient for o in channels["email"].sent] == ["parent1@example.com",
                                                             "mama.fixed@example.com"]
