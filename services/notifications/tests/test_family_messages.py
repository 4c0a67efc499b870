"""Admissions' SMS to guardians: codes go at once and are not kept; tickets carry the code
and the manage link; the number is masked in what is logged."""

from __future__ import annotations

from datetime import UTC, datetime

from services.notifications import family_messages
from services.notifications.settings import NotifySettings

NIGHT = datetime(2026, 7, 1, 15, 30, tzinfo=UTC)  # 23:30 in Shanghai: quiet hours
SETTINGS = NotifySettings()


def message(kind: str, **data):
    return {"kind": kind, "key": f"{kind}|adm_1", "contact": "+86 139 0000 0001",
            "language": "zh-CN", **data}


def test_a_code_goes_at_night_and_its_text_is_not_kept():
    doc = family_messages.compose(message("code", code="482913",
                                          expires_at="2026-07-01T15:35:00Z"),
                                  "evt_1", SETTINGS, NIGHT)
    assert doc["status"] == "queued" and doc["channel"] == "sms"
    assert doc["recipient"] == "13900000001" and doc["recipient_masked"] != doc["recipient"]
    assert "482913" in doc["text"] and "482913" not in doc["text_redacted"]
    assert "482913" not in doc["subject"] and "5分钟" in doc["text"]


def test_a_ticket_carries_its_code_and_link_and_a_reminder_waits_for_morning():
    link = "https://kepu.example/family/bookings/tok.mac"
    data = dict(booking_id="adm_1", session_id="ses_1", title="亲子观星夜",
                venue_name="天文馆", starts_at="2026-07-10T12:00:00Z", ticket_code="KHJBB5Q3",
                link=link)
    ticket = family_messages.compose(message("ticket", **data), "evt_2", SETTINGS, NIGHT)
    assert "KHJBB5Q3" in ticket["text"] and link in ticket["text"]
    assert link not in ticket["text_redacted"] and ticket["status"] == "queued"
    reminder = family_messages.compose(message("reminder", **data), "evt_3", SETTINGS, NIGHT)
    assert reminder["status"] == "deferred"


def test_the_same_message_is_stored_once():
    one = family_messages.compose(message("cancelled", title="t"), "evt_4", SETTINGS, NIGHT)
    two = family_messages.compose(message("cancelled", title="t"), "evt_5", SETTINGS, NIGHT)
    assert one["_id"] == two["_id"]


def test_an_erased_booking_leaves_no_number_in_its_messages(db):
    messages = db.messages
    ticket = family_messages.compose(message("ticket", title="t"), "evt_6", SETTINGS, NIGHT)
    ticket["dedup_key"] = "admissions|ticket|adm_1"
    ticket["_id"] = family_messages.message_id(ticket["dedup_key"])
    messages.insert_one({**ticket, "status": "sent"})
    other = family_messages.compose(message("ticket", key="ticket|adm_2"), "e", SETTINGS, NIGHT)
    messages.insert_one({**other, "status": "sent"})
    assert family_messages.forget(messages, {"booking_id": "adm_1", "session_id": "s"}) == 1
    assert messages.find_one({"_id": ticket["_id"]})["recipient"] is None
    assert messages.find_one({"_id": other["_id"]})["recipient"] == "13900000001"
