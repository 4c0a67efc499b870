"""Upkeep on a timer: reminders before a session, and erasing guardians' numbers after.

A guardian's mobile is kept for the booking only: `erase_after` is the session's end plus
`KEPU_ADMISSIONS_ERASE_DAYS`, and the sweep unsets the number (the masked form stays for
the venue's records), and `admissions.contact_erased` tells notifications to forget the
recipient of the messages it sent about the booking. Reminders go once, `reminder_hours`
before the session.
"""

from __future__ import annotations

from datetime import timedelta

from pymongo.collection import Collection

from services.admissions.bookings import Bookings
from services.kit import clock
from services.kit.outbox import add_events, event


def erase_numbers(bookings: Collection, limit: int = 500) -> int:
    """Unset the mobile of every booking whose session ended long enough ago."""
    now = clock.stamp()
    erased = 0
    for doc in list(bookings.find({"erase_after": {"$lte": now}, "mobile": {"$ne": None}},
                                  {"_id": 1, "session_id": 1}).limit(limit)):
        forget = event("admissions.contact_erased", {"booking_id": doc["_id"],
                                                     "session_id": doc["session_id"]})
        erased += bookings.update_one(
            {"_id": doc["_id"], "mobile": {"$ne": None}},
            add_events({"$set": {"mobile": None, "erased_at": now}}, forget)).modified_count
    return erased


def send_reminders(desk: Bookings, hours: int, limit: int = 200) -> int:
    """Stage one reminder per confirmed booking whose session starts within `hours`."""
    now = clock.now()
    soon = clock.stamp(now + timedelta(hours=hours))
    sent = 0
    for doc in list(desk.bookings.find(
            {"status": "confirmed", "reminded": False, "session.starts_at": {"$lte": soon}},
            {"outbox": 0}).limit(limit)):
        if doc["session"]["starts_at"] <= clock.stamp(now):
            desk.bookings.update_one({"_id": doc["_id"]}, {"$set": {"reminded": True}})
            continue
        sent += desk.bookings.update_one(
            {"_id": doc["_id"], "reminded": False},
            add_events({"$set": {"reminded": True}}, *desk._message(doc, "reminder"))
        ).modified_count
    return sent
