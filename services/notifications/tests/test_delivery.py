"""Delivery against real providers on loopback: the SMTP sink and the webhook receiver."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.notifications import channels, rosters
from services.notifications.delivery import Delivery
from services.notifications.guardians import Recipient
from services.notifications.notices import compose
from services.notifications.settings import NotifySettings
from services.notifications.tests.factories import TRIP

SECRET = "unit-secret-for-consent-links-0123456789"


@pytest.fixture()
def settings(sinks):
    env = {**sinks.env(), "KEPU_NOTIFY_RETRY_DELAYS_MS": "1000,5000",
           "KEPU_PUBLIC_URL": "http://kepu.test"}
    return NotifySettings.from_env(env)


@pytest.fixture()
def delivery(repo, settings):
    built = channels.build(settings)
    yield Delivery(repo, built, settings)
    for channel in built.values():
        channel.close()


def unique_phone() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


def claim_for(*guardians: dict) -> tuple[dict, list[Recipient]]:
    pupils = [{"name": f"学生{i}", "guardians": [g]} for i, g in enumerate(guardians)]
    doc = rosters.build_document("sch_1", "五年级(1)班", pupils)
    claim = {"_id": f"clm_{uuid.uuid4().hex[:8]}", "school_id": "sch_1",
             "school_name": "实验小学", "session_id": "ses_1", "labels": ["五年级(1)班"],
             "trip": TRIP}
    recipients = [Recipient("五年级(1)班", p, g) for p in doc["pupils"] for g in p["guardians"]]
    return claim, recipients


def guardian(**contact) -> dict:
    return {"name": "家长", "relation": "母亲", "phone": None, "email": None,
            "wechat_openid": None, "language": "zh-CN", "opt_out": [], **contact}


def send_now(delivery, settings, claim, recipients, kind="confirmed"):
    docs = compose(claim, kind, recipients, settings=settings, secret=SECRET)
    stored = delivery.enqueue(docs)
    delivery.send_all(stored)
    return [delivery.repo.message(d["_id"]) for d in docs]


def test_quiet_hours_defer_a_22h_sms_to_7h(delivery, settings, sinks, frozen):
    shanghai = ZoneInfo("Asia/Shanghai")
    frozen.set(datetime(2026, 11, 23, 22, 0, tzinfo=shanghai))
    phone = unique_phone()
    claim, recipients = claim_for(guardian(phone=phone, channel="sms"))
    [message] = send_now(delivery, settings, claim, recipients)
    assert message["status"] == "deferred" and message["attempts"] == 0
    assert message["due_at"] == "2026-11-23T23:00:00.000000Z"  # 07:00 on the 24th, Shanghai
    frozen.set(datetime(2026, 11, 24, 6, 59, tzinfo=shanghai))
    assert delivery.deliver_due() == {}
    frozen.set(datetime(2026, 11, 24, 7, 0, tzinfo=shanghai))
    assert delivery.deliver_due() == {"sent": 1}
    message = delivery.repo.message(message["_id"])
    assert message["status"] == "sent" and message["attempts"] == 1
    [hook] = sinks.http.to(phone)
    assert hook.path == "/sms" and "星空探秘" in hook.body["text"]
    assert message["provider_id"].startswith("prov-")


def test_sms_failing_twice_then_accepted_is_sent_on_the_third_attempt(delivery, settings,
                                                                       sinks, frozen):
    phone = unique_phone()
    sinks.http.fail(phone, times=2)
    claim, recipients = claim_for(guardian(phone=phone, channel="sms"))
    [message] = send_now(delivery, settings, claim, recipients)
    assert message["status"] == "queued" and message["attempts"] == 1
    assert "HTTP 503" in message["error"]
    assert message["due_at"] == "2026-11-23T02:00:01.000000Z"  # first backoff: 1 s
    assert delivery.deliver_due() == {}  # not due yet
    frozen.advance(seconds=1)
    assert delivery.deliver_due() == {"retrying": 1}
    frozen.advance(seconds=5)
    assert delivery.deliver_due() == {"sent": 1}
    message = delivery.repo.message(message["_id"])
    assert message["status"] == "sent" and message["attempts"] == 3
    assert message["provider_id"] and message["error"] is None
    assert [t["ok"] for _, t in sorted(message["tries"].items())] == [False, False, True]
    assert [h.status for h in sinks.http.to(phone)] == [503, 503, 200]


def test_sms_always_failing_ends_failed_with_the_error(delivery, settings, sinks, frozen):
    phone = unique_phone()
    sinks.http.fail(phone, times=None)
    claim, recipients = claim_for(guardian(phone=phone, channel="sms"))
    [message] = send_now(delivery, settings, claim, recipients)
    frozen.advance(seconds=1)
    delivery.deliver_due()
    frozen.advance(seconds=5)
    assert delivery.deliver_due() == {"failed": 1}
    frozen.advance(hours=1)
    assert delivery.deliver_due() == {}
    message = delivery.repo.message(message["_id"])
    assert message["status"] == "failed" and message["attempts"] == 3
    assert "HTTP 503" in message["error"] and phone not in message["error"]
    assert len(sinks.http.to(phone)) == 3


def test_a_provider_echoing_the_number_reformatted_leaves_no_contact_in_the_error(
        delivery, settings, sinks, frozen, caplog):
    phone = unique_phone()
    sinks.http.refuse(phone)  # 400 "no such subscriber: +86 139 1234 5678"
    claim, recipients = claim_for(guardian(phone=phone, channel="sms"))
    with caplog.at_level("WARNING", logger="kepu.notifications.delivery"):
        [message] = send_now(delivery, settings, claim, recipients)
    assert message["status"] == "failed" and "HTTP 400" in message["error"]
    spaced = f"{phone[:3]} {phone[3:7]} {phone[7:]}"
    assert f"{phone[:3]}****{phone[-4:]}" in message["error"]
    for form in (phone, spaced, phone[3:7]):
        assert form not in message["error"]
        assert form not in caplog.text
    assert "failed after 1 attempt" in caplog.text


def test_email_goes_over_smtp_and_wechat_over_its_webhook(delivery, settings, sinks, frozen):
    address = f"li.{uuid.uuid4().hex[:6]}@example.com"
    openid = f"o{uuid.uuid4().hex[:20]}"
    claim, recipients = claim_for(guardian(email=address, channel="email"),
                                  guardian(wechat_openid=openid, channel="wechat",
                                           language="en"))
    mail_msg, wechat_msg = send_now(delivery, settings, claim, recipients)
    assert mail_msg["status"] == wechat_msg["status"] == "sent"
    [mail] = sinks.smtp.to(address)
    assert mail.subject.startswith("【科普】") and "星空探秘" in mail.subject
    assert "2026年11月28日（星期六）09:30–11:30（北京时间）" in mail.text
    assert "http://kepu.test/v1/consents/" in mail.text
    assert mail_msg["provider_id"] == str(mail.message["Message-ID"]).strip()
    assert mail_msg["recipient_masked"] == "l***@example.com"
    [hook] = sinks.http.to(openid)
    assert hook.path == "/wechat" and hook.body["msgtype"] == "text"
    assert "Saturday 28 November 2026, 09:30–11:30" in hook.body["text"]["content"]


def test_opted_out_channel_falls_to_the_next_or_is_suppressed(delivery, settings, sinks,
                                                               frozen):
    address = f"o{uuid.uuid4().hex[:6]}@example.com"
    claim, recipients = claim_for(
        guardian(phone=unique_phone(), email=address, channel="sms", opt_out=["sms"]),
        guardian(phone=unique_phone(), channel="sms", opt_out=["sms", "email", "wechat"]))
    moved, suppressed = send_now(delivery, settings, claim, recipients)
    assert moved["channel"] == "email" and moved["status"] == "sent"
    assert len(sinks.smtp.to(address)) == 1
    assert suppressed["status"] == "suppressed" and suppressed["channel"] is None
    assert "opted out" in suppressed["error"]


def test_an_unconfigured_channel_fails_at_once_visibly(repo, frozen):
    settings = NotifySettings.from_env({})
    delivery = Delivery(repo, channels.build(settings), settings)
    claim, recipients = claim_for(guardian(phone=unique_phone(), channel="sms"))
    [message] = send_now(delivery, settings, claim, recipients)
    assert message["status"] == "failed" and message["attempts"] == 1
    assert "SMS_WEBHOOK_URL" in message["error"]


def test_the_same_notice_is_stored_and_sent_once(delivery, settings, sinks, frozen):
    address = f"d{uuid.uuid4().hex[:6]}@example.com"
    claim, recipients = claim_for(guardian(email=address, channel="email"))
    send_now(delivery, settings, claim, recipients)
    again = compose(claim, "confirmed", recipients, settings=settings, secret=SECRET)
    assert delivery.enqueue(again) == []
    assert len(sinks.smtp.to(address)) == 1


def test_a_message_whose_sender_died_is_sent_after_its_lease(delivery, settings, sinks,
                                                              frozen):
    address = f"z{uuid.uuid4().hex[:6]}@example.com"
    claim, recipients = claim_for(guardian(email=address, channel="email"))
    docs = delivery.enqueue(compose(claim, "confirmed", recipients, settings=settings,
                                    secret=SECRET))
    assert docs[0]["status"] == "queued"  # ...and its sender died before sending it
    assert delivery.deliver_due() == {}
    frozen.advance(seconds=settings.lease_s + 1)
    assert delivery.deliver_due() == {"sent": 1}
    assert len(sinks.smtp.to(address)) == 1


def test_smtp_connections_are_reused(settings, sinks):
    address = f"pool.{uuid.uuid4().hex[:6]}@example.com"
    email = channels.EmailChannel(settings)
    try:
        for n in range(5):
            email.send(channels.Outgoing(f"msg_{n}", "email", address, "s", "t", "zh-CN"))
        assert len(email.pool._idle) == 1  # one connection carried all five
    finally:
        email.close()
    assert len(sinks.smtp.to(address)) == 5


def test_the_due_poll_takes_waiting_messages_whose_lease_lapsed_and_nothing_else(repo):
    """`lease_due` finds messages by `due_at` alone (every outcome clears it): a message
    under a live lease, one not yet due and one settled are left; a lapsed lease or none
    (`""`, as `settle_many` leaves it) is taken, oldest due first."""
    now, past, later = ("2026-11-23T02:00:00.000000Z", "2026-11-23T01:00:00.000000Z",
                        "2026-11-23T03:00:00.000000Z")
    tag = uuid.uuid4().hex[:8]

    def message(name: str, **fields) -> None:
        repo.db.messages.insert_one({"_id": f"msg_{tag}_{name}", "status": "queued",
                                     "lease_until": "", "due_at": past, **fields})

    message("no_lease", due_at="2026-11-23T01:30:00.000000Z")
    message("lapsed", lease_until=past, status="deferred")
    message("leased", lease_until=later)
    message("not_due", due_at=later)
    message("sent", status="sent", due_at=None)
    message("broken", status="sent")  # a terminal message left with a due_at by hand
    taken = repo.lease_due(now, later, 10)
    mine = [doc["_id"].removeprefix(f"msg_{tag}_") for doc in taken
            if doc["_id"].startswith(f"msg_{tag}_")]
    assert mine == ["lapsed", "no_lease"]
    assert all(doc["status"] == "queued" and doc["lease_until"] == later for doc in taken)
    assert [d["_id"] for d in repo.lease_due(now, later, 10)
            if d["_id"].startswith(f"msg_{tag}_")] == []  # leased now: not taken twice
