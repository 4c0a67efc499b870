"""Admissions' messages to guardians, delivered: a one-time code, an e-ticket, a reminder,
a waitlist promotion, a cancellation or an expired hold, each one SMS to the verified
mobile, on the same delivery path as every notice (log, retries, masking, dedup).

- A one-time code is asked for by the person waiting for it and lasts minutes: it goes at
  once, day or night, and its text is a secret (kept only until settled, then redacted).
  A code whose expiry passed before it could go is suppressed.
- A ticket, promotion or reminder carries the manage link (it can cancel the booking):
  also a secret, redacted once settled. Reminders and promotions wait out quiet hours.
- Texts are short and built here (SMS); the number is never logged, only its mask.

These messages belong to no school: the schools' delivery log never lists them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pymongo.collection import Collection

from services.kit import clock
from services.notifications.accounts import _recipient
from services.notifications.delivery import Delivery
from services.notifications.messages import message_id, new_message
from services.notifications.settings import NotifySettings
from services.notifications.templates import moment

log = logging.getLogger("kepu.notifications.family")

WITHHELD = {"zh-CN": "〔已发送，不予保存〕", "en": "[sent, not kept]"}
URGENT = ("code", "ticket", "cancelled", "expired")  # the person is waiting: no quiet hours

TEXTS = {
    "zh-CN": {
        "code": "【科普】您的验证码是{code}，{minutes}分钟内有效。请勿告诉他人。",
        "ticket": "【科普】预约成功：{title}，{venue}，{when}。电子票码 {ticket}，"
                  "入场出示二维码：{link}",
        "promoted": "【科普】候补成功：{title}，{when}。电子票码 {ticket}，查看或取消：{link}",
        "reminder": "【科普】提醒：{title}将于{when}在{venue}开始。票码 {ticket}：{link}",
        "cancelled": "【科普】您的预约已取消：{title}，{when}。",
        "expired": "【科普】您未在时限内确认，预留的名额已释放：{title}。",
    },
    "en": {
        "code": "[Kepu] Your code is {code}, valid for {minutes} minutes. Do not share it.",
        "ticket": "[Kepu] Booked: {title}, {venue}, {when}. Ticket {ticket}; "
                  "show the QR code at the door: {link}",
        "promoted": "[Kepu] A place came free: {title}, {when}. Ticket {ticket}: {link}",
        "reminder": "[Kepu] Reminder: {title} at {venue}, {when}. Ticket {ticket}: {link}",
        "cancelled": "[Kepu] Your booking was cancelled: {title}, {when}.",
        "expired": "[Kepu] Not confirmed in time, the seats were released: {title}.",
    },
}


def compose(data: dict[str, Any], event_id: str, settings: NotifySettings,
            now: datetime | None = None) -> dict[str, Any]:
    """The one SMS of an `admissions.guardian_message` event."""
    now = now or clock.now()
    language = data["language"] if data.get("language") in TEXTS else "zh-CN"
    kind = data["kind"]
    contact, masked = _recipient("sms", data["contact"])
    minutes = 5
    if data.get("expires_at"):
        minutes = max(1, round((clock.parse(data["expires_at"]) - now).total_seconds() / 60))
    values = {"code": data.get("code") or "", "minutes": minutes,
              "title": data.get("title") or "", "venue": data.get("venue_name") or "",
              "when": moment(data["starts_at"], language) if data.get("starts_at") else "",
              "ticket": data.get("ticket_code") or "", "link": data.get("link") or ""}
    text = TEXTS[language][kind].format(**values)
    secret = data.get("code") or data.get("link")
    redacted = text.replace(secret, WITHHELD[language]) if secret else None
    return new_message(
        key=f"admissions|{data['key']}", kind=f"family_{kind}", template=f"family_{kind}",
        language=language, channel="sms", contact=contact, masked=masked,
        subject={"zh-CN": "科普预约", "en": "Kepu booking"}[language], text=text,
        settings=settings, now=now, quiet=kind not in URGENT,
        text_redacted=redacted,
        link_expires_at=data.get("expires_at") if kind == "code" else None,
        event_id=event_id, session_id=data.get("session_id"))


SETTLED = ["sent", "failed", "suppressed"]
BOOKING_KINDS = ("ticket", "promoted", "reminder", "cancelled", "expired")


def deliver(delivery: Delivery, data: dict[str, Any], event_id: str) -> dict[str, int]:
    """Store the message (a repeat is skipped) and send it now unless quiet hours hold it.

    A one-time code's number is forgotten as soon as its message settles: no booking may
    ever follow it, so nothing else would erase it."""
    doc = compose(data, event_id, delivery.settings)
    counts = delivery.store_and_send([doc])
    if data["kind"] == "code":
        delivery.repo.db.messages.update_one({"_id": doc["_id"], "status": {"$in": SETTLED}},
                                             {"$set": {"recipient": None}})
    log.info("family %s message %s to %s: %s", data["kind"], doc["_id"],
             doc["recipient_masked"], counts or "already stored")
    return counts


def forget(messages: Collection, data: dict[str, Any]) -> int:
    """`admissions.contact_erased`: drop the recipient of the booking's settled messages
    (found by their ids, which derive from their dedup keys); the masked form stays."""
    ids = [message_id(f"admissions|{kind}|{data['booking_id']}") for kind in BOOKING_KINDS]
    return messages.update_many({"_id": {"$in": ids}, "status": {"$in": SETTLED}},
                                {"$set": {"recipient": None}}).modified_count
