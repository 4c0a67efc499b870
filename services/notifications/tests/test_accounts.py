"""Identity's invitation and reset links: delivered like notices, the link never kept or
logged, quiet hours for invitations only."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from services.notifications import accounts
from services.notifications.channels import SendFailed
from services.notifications.delivery import Delivery
from services.notifications.settings import NotifySettings

TOKEN = "inv_7f3a9c.Zm9vYmFyYmF6cXV4c2VjcmV0MjU2Yml0c2xvbmdlbm91Z2g"
LINK = f"http://kepu.test/invitations/accept#{TOKEN}"


class Recorder:
    def __init__(self, name: str, fail_with: SendFailed | None = None) -> None:
        self.name = name
        self.sent: list = []
        self.fail_with = fail_with

    def send(self, outgoing):
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(outgoing)
        return f"{self.name}-{len(self.sent)}"

    def close(self):
        pass


@pytest.fixture()
def channels():
    return {name: Recorder(name) for name in ("email", "sms", "wechat")}


@pytest.fixture()
def delivery(repo, channels, frozen):
    return Delivery(repo, channels, NotifySettings.from_env({}))


def invitation(**overrides):
    return {"invitation_id": "inv_7f3a9c", "channel": "email", "contact": "wang.li@school.cn",
            "contact_masked": "w***@school.cn", "link": LINK, "language": "zh-CN",
            "org_id": "sch_1", "org_name": "浦东新区实验小学", "role": "school",
            "expires_at": "2026-11-30T02:00:00.000000Z", "resent": False, **overrides}


def reset(**overrides):
    return {"user_id": "usr_1", "channel": "sms", "contact": "+86 138 1234 5678",
            "contact_masked": "+86 138****5678", "link": LINK, "language": "en",
            "expires_at": "2026-11-23T15:00:00.000000Z", **overrides}


def test_an_invitation_goes_by_email_in_its_language_and_only_once(repo, delivery, channels,
                                                                   caplog):
    caplog.set_level(logging.DEBUG, logger="kepu")
    assert accounts.deliver(delivery, "invitation", invitation(), "evt_1") == {"sent": 1}
    assert accounts.deliver(delivery, "invitation", invitation(), "evt_1_copy") == {}
    [mail] = channels["email"].sent
    assert mail.recipient == "wang.li@school.cn" and mail.language == "zh-CN"
    assert "浦东新区实验小学" in mail.subject and LINK in mail.text and "学校工作人员" in mail.text
    stored = repo.db.messages.find_one({"invitation_id": "inv_7f3a9c"})
    assert stored["status"] == "sent" and stored["school_id"] is None
    assert stored["recipient_masked"] == "w***@school.cn"
    assert TOKEN not in str(stored)  # once sent, the link is gone from the stored text
    assert "〔链接已发送，不予保存〕" in stored["text"]
    assert TOKEN not in caplog.text and "wang.li" not in caplog.text


def test_a_resent_invitation_is_a_new_message(delivery, channels):
    accounts.deliver(delivery, "invitation", invitation(), "evt_1")
    again = invitation(link=LINK + "-new", resent=True, language="en")
    assert accounts.deliver(delivery, "invitation", again, "evt_2") == {"sent": 1}
    assert channels["email"].sent[1].subject.startswith("[Kepu] You are invited to join")


def test_quiet_hours_hold_an_sms_invitation_but_not_a_reset(repo, delivery, channels,
                                                            frozen):
    frozen.set(datetime(2026, 11, 23, 14, 30, tzinfo=UTC))  # 22:30 in Shanghai
    held = accounts.deliver(delivery, "invitation", invitation(
        channel="sms", contact="13812345678"), "evt_1")
    assert held == {"deferred": 1} and channels["sms"].sent == []
    waiting = repo.db.messages.find_one({"invitation_id": "inv_7f3a9c"})
    assert waiting["due_at"] == "2026-11-23T23:00:00.000000Z"  # 07:00 the next morning
    assert accounts.deliver(delivery, "password_reset", reset(), "evt_2") == {"sent": 1}
    [sms] = channels["sms"].sent
    assert sms.recipient == "13812345678" and "Password reset link" in sms.text
    assert accounts.deliver(delivery, "password_reset", reset(
        user_id="usr_2", channel="email", contact="a@b.cn"), "evt_3") == {"sent": 1}
    frozen.set(datetime(2026, 11, 23, 23, 0, 1, tzinfo=UTC))
    assert delivery.deliver_due() == {"sent": 1}
    assert channels["sms"].sent[-1].text.count(LINK) == 1


def test_a_link_that_expired_while_waiting_is_never_sent(repo, delivery, channels, frozen):
    frozen.set(datetime(2026, 11, 23, 14, 30, tzinfo=UTC))
    accounts.deliver(delivery, "invitation", invitation(
        channel="sms", contact="13812345678", expires_at="2026-11-23T20:00:00Z"), "evt_1")
    frozen.set(datetime(2026, 11, 23, 23, 0, 1, tzinfo=UTC))
    assert delivery.deliver_due() == {"suppressed": 1}
    assert channels["sms"].sent == []
    stored = repo.db.messages.find_one({"invitation_id": "inv_7f3a9c"})
    assert stored["status"] == "suppressed" and "expired" in stored["error"]
    assert TOKEN not in str(stored)


def test_a_provider_echoing_the_link_leaves_no_token_behind(repo, delivery, channels,
                                                            caplog):
    channels["email"].fail_with = SendFailed(f"550 rejected content: {LINK}", permanent=True)
    assert accounts.deliver(delivery, "invitation", invitation(), "evt_1") == {"failed": 1}
    stored = repo.db.messages.find_one({"invitation_id": "inv_7f3a9c"})
    assert stored["status"] == "failed" and "<link>" in stored["error"]
    assert TOKEN not in str(stored) and TOKEN not in caplog.text
