"""Parents hear about trips through the real stack: booking → events → SMTP and webhooks."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pymongo
import pytest

from services.kit.outbox import event as envelope
from tests.booking_helpers import iso
from tests.notifications_helpers import (
    Events,
    Ledger,
    School,
    ServiceLog,
    Venue,
    claim,
    csv_roster,
    group,
    json_roster,
    log,
    put_roster,
    tag,
)
from tests.support import wait_for

pytestmark = pytest.mark.stack


@pytest.fixture()
def events(stack, settings_env):
    tap = Events(settings_env["AMQP_URL"])
    yield tap
    tap.close()


@pytest.fixture()
def ledger(stack, settings_env):
    record = Ledger(settings_env["MONGO_URL"])
    yield record
    record.close()


@pytest.fixture()
def service_log(stack):
    return ServiceLog(stack.log_dir)


def test_claim_for_two_classes_emails_40_guardians_once(api, sinks, events, service_log):
    t = tag()
    venue = Venue(api, name="上海科技馆 fan-out")
    session = venue.publish(capacity=100, what_to_bring="水杯")
    school = School(api)
    a, b = "五年级(1)班", "五年级(2)班"
    # class A: 15 pupils, 5 of them with two guardians (JSON); class B: 20 pupils (CSV)
    assert put_roster(school.client, school.id, a,
                      json_roster(t, 15, two_guardians=5)).status_code == 200
    assert put_roster(school.client, school.id, b, csv_roster(t, 20, start=100)).status_code \
        == 200
    made = claim(school, session["session_id"], group(a, students=15), group(b, students=20))

    def mails():
        return sinks.smtp.matching(lambda m: any(t in r for r in m.rcpt_tos))

    wait_for(lambda: len(mails()) >= 40, timeout=60, message="40 emails at the SMTP sink")
    def all_sent():
        entries = log(school.client, made["claim_id"], limit=15)  # three pages
        return entries if all(e["status"] == "sent" for e in entries) else None

    entries = wait_for(all_sent, timeout=30, message="every log entry sent")
    assert len(entries) == 40
    assert len({e["message_id"] for e in entries}) == 40
    assert all(e["recipient"].startswith("g") and "***@example.com" in e["recipient"]
               for e in entries)
    assert all(e["channel"] == "email" and e["attempts"] == 1 and e["provider_id"]
               for e in entries)
    assert {e["template"] for e in entries} == {"confirmed.zh-CN", "confirmed.en"}
    received = sorted(r for m in mails() for r in m.rcpt_tos)
    assert len(received) == len(set(received)) == 40
    english = next(m for m in mails() if m.rcpt_tos[0].startswith("g0b."))
    assert english.subject.startswith("[Kepu] Trip confirmed") and "水杯" in english.text
    chinese = next(m for m in mails() if m.rcpt_tos[0].startswith("g100."))
    assert "上海科技馆 fan-out" in chinese.text and "北京时间" in chinese.text

    # the same event again (as a relay restart would publish it), and a copy under a new id;
    # the handler keeps no ledger (its message ids are), so its log says it ran: under each
    # delivery's own correlation id, nothing new stored
    original = events.one("booking.claim_confirmed", claim_id=made["claim_id"])
    repeat = {**original, "correlation_id": f"repeat-{t}"}
    copy = {**original, "event_id": uuid.uuid4().hex, "correlation_id": f"copy-{t}"}
    events.publish(repeat)
    events.publish(copy)
    for delivery in (repeat, copy):
        service_log.wait_lines(f"confirmed notice for claim {made['claim_id']}: "
                               "0 new message(s)", correlation_id=delivery["correlation_id"])
    assert len(mails()) == 40
    assert len(log(school.client, made["claim_id"])) == 40


def test_sms_retries_then_sends_or_fails_visibly(api, sinks):
    venue = Venue(api, name="SMS drill venue")
    session = venue.publish(capacity=50)
    school = School(api)
    flaky = f"137{uuid.uuid4().int % 10**8:08d}"
    dead = f"136{uuid.uuid4().int % 10**8:08d}"
    sinks.http.fail(flaky, times=2)
    sinks.http.fail(dead, times=None)
    roster = {"pupils": [
        {"name": "李雷", "guardians": [{"name": "李爸爸", "phone": flaky, "channel": "sms"}]},
        {"name": "韩梅梅", "guardians": [{"name": "韩妈妈", "phone": dead, "channel": "sms"}]}]}
    assert put_roster(school.client, school.id, "三年级(4)班", roster).status_code == 200
    made = claim(school, session["session_id"], group("三年级(4)班", students=2))

    def settled():
        entries = log(school.client, made["claim_id"])
        done = [e for e in entries if e["status"] in ("sent", "failed")]
        return entries if len(done) == 2 else None

    entries = wait_for(settled, timeout=30, message="both SMS settled")
    by_phone = {e["recipient"]: e for e in entries}
    sent = by_phone[f"{flaky[:3]}****{flaky[-4:]}"]
    failed = by_phone[f"{dead[:3]}****{dead[-4:]}"]
    assert sent["status"] == "sent" and sent["attempts"] == 3 and sent["provider_id"]
    assert failed["status"] == "failed" and failed["attempts"] == 3
    assert "HTTP 503" in failed["error"]
    assert [h.status for h in sinks.http.to(flaky)] == [503, 503, 200]
    assert len(sinks.http.to(dead)) == 3
    assert sinks.http.to(flaky)[-1].path == "/sms"


def test_reschedule_and_venue_cancellation_each_reach_parents_once(api, sinks, events,
                                                                   ledger, service_log):
    t = tag()
    venue = Venue(api, name="天文馆 changes")
    session = venue.publish(capacity=60)
    school = School(api)
    assert put_roster(school.client, school.id, "四年级(1)班",
                      json_roster(t, 3)).status_code == 200
    made = claim(school, session["session_id"], group("四年级(1)班", students=3))

    def mails(word):
        return sinks.smtp.matching(lambda m: t in m.rcpt_tos[0] and word in m.subject)

    wait_for(lambda: len(mails("确认")) == 3, message="confirmations")
    moved = venue.client.patch(f"/v1/sessions/{session['session_id']}",
                               json={"starts_at": iso(timedelta(days=5)),
                                     "ends_at": iso(timedelta(days=5, hours=2))})
    assert moved.status_code == 200, moved.text
    wait_for(lambda: len(mails("变更")) == 3, message="reschedule notices")
    assert all("原时间" in m.text for m in mails("变更"))

    cancelled = venue.client.post(f"/v1/sessions/{session['session_id']}/cancel",
                                  json={"reason": "场馆设备检修"})
    assert cancelled.status_code == 200, cancelled.text
    by_venue = events.one("venues.session_cancelled", session_id=session["session_id"])
    events.one("booking.claim_cancelled", claim_id=made["claim_id"])
    ledger.wait_applied("on_session_cancelled", by_venue["event_id"])
    # both handlers tell this claim's parents (on_claim_cancelled keeps no ledger: its log)
    service_log.wait_lines(f"cancelled notice for claim {made['claim_id']}", count=2)
    wait_for(lambda: len(mails("取消")) >= 3, message="cancellation notices")
    assert len(mails("取消")) == 3  # one per guardian, though two events said it
    assert all("场馆设备检修" in m.text for m in mails("取消"))
    kinds = sorted(e["kind"] for e in log(school.client, made["claim_id"]))
    assert kinds == ["cancelled"] * 3 + ["confirmed"] * 3 + ["rescheduled"] * 3


def test_a_school_cancelling_its_claim_tells_its_parents(api, sinks):
    t = tag()
    venue = Venue(api, name="动物园 cancel")
    session = venue.publish(capacity=60)
    school = School(api)
    assert put_roster(school.client, school.id, "一年级(2)班", json_roster(t, 2)).status_code \
        == 200
    made = claim(school, session["session_id"], group("一年级(2)班", students=2))
    wait_for(lambda: len(sinks.smtp.matching(lambda m: t in m.rcpt_tos[0])) == 2)
    response = school.client.post(f"/v1/claims/{made['claim_id']}/cancel",
                                  json={"reason": "学校临时安排考试"})
    assert response.status_code == 200, response.text
    wait_for(lambda: len(sinks.smtp.matching(
        lambda m: t in m.rcpt_tos[0] and "学校临时安排考试" in m.text)) == 2,
        message="cancellation notices")


def test_identity_links_arrive_and_their_tokens_are_neither_kept_nor_logged(
        stack, sinks, events, settings_env):
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    address = f"invitee.{tag()}@school.test"
    phone = f"135{uuid.uuid4().int % 10**8:08d}"
    invite = f"{stack.url}/invitations/accept#inv_{secret[:8]}.{secret}"
    reset = f"{stack.url}/password-reset#{secret[::-1]}"
    events.publish(envelope("identity.invitation_sent", {
        "invitation_id": f"inv_{secret[:8]}", "channel": "email", "contact": address,
        "contact_masked": "i***@school.test", "link": invite, "language": "en",
        "org_id": "sch_x", "org_name": "Pudong Experimental School", "role": "school",
        "expires_at": iso(timedelta(days=7)), "resent": False}))
    events.publish(envelope("identity.password_reset_requested", {
        "user_id": f"usr_{secret[:8]}", "channel": "sms", "contact": f"+86 {phone}",
        "contact_masked": "+86 135****0000", "link": reset, "language": "zh-CN",
        "expires_at": iso(timedelta(hours=1))}))
    [mail] = wait_for(lambda: sinks.smtp.to(address), message="the invitation e-mail")
    assert mail.subject == "[Kepu] You are invited to join Pudong Experimental School"
    assert invite in mail.text and "school staff" in mail.text
    [sms] = wait_for(lambda: sinks.http.to(phone, "/sms"), message="the reset SMS")
    assert reset in sms.body["text"] and sms.body["text"].startswith("【科普】重设密码")

    stored = pymongo.MongoClient(settings_env["MONGO_URL"]).kepu_notifications.messages
    mine = {"$or": [{"invitation_id": f"inv_{secret[:8]}"}, {"user_id": f"usr_{secret[:8]}"}]}
    docs = wait_for(lambda: [d for d in stored.find(mine)]
                    if [d["status"] for d in stored.find(mine)] == ["sent", "sent"] else None,
                    message="both messages settled")
    assert secret not in str(docs) and secret[::-1] not in str(docs)
    assert {d["recipient_masked"] for d in docs} == {"i***@school.test", f"{phone[:3]}****"
                                                     f"{phone[-4:]}"}
    for path in stack.log_dir.glob("*.log"):
        text = path.read_text(errors="replace")
        assert secret not in text and secret[::-1] not in text, path.name
