"""Arrivals: checking a ticket in at the door, what was paid there, and the day's takings.

A check-in is one conditional update (confirmed, not yet checked in): a second scan of
the same ticket changes nothing and answers when it was first checked in. A fee is
recorded as paid at the venue with its method (cash, WeChat Pay, Alipay, card); no money
moves through Kepu (docs/admissions.md). `day` is the venue's local date of the check-in,
what the takings report groups by.
"""

from __future__ import annotations

import base64
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.collection import Collection

from services.admissions import tickets
from services.admissions.bookings import facts, view
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.kit.outbox import add_events, event
from services.kit.spreadsheets import XLSX_TYPE, write_csv, write_xlsx

HEADER = ("checked_in_at", "session", "booking_id", "audience", "adults", "children",
          "amount_fen", "amount_yuan", "method")


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _at_venue(actor: Actor, venue_id: str) -> None:
    """The venue's own staff (or an admin); another venue's staff learn nothing of it."""
    if not actor.is_admin and (actor.role != "venue" or not actor.owns(venue_id)):
        raise Forbidden("only this venue's staff may do this", code="not-this-venue")


def check_in(bookings: Collection, actor: Actor, venue_id: str, scanned: str,
             method: str | None) -> dict[str, Any]:
    """Mark a ticket's arrival; a repeat answers `repeated` with the first time."""
    _at_venue(actor, venue_id)
    code = tickets.read_code(scanned)
    if code is None:
        raise ValidationFailed("not a ticket code", {"code": ["not a ticket code"]},
                               code="ticket-code-invalid")
    doc = bookings.find_one({"ticket_code": code, "venue_id": venue_id}, {"outbox": 0})
    if doc is None:
        raise NotFound("no such ticket at this venue", code="ticket-not-found")
    if doc.get("checked_in_at"):
        return {**view(doc), "repeated": True, "first_checked_in_at": doc["checked_in_at"]}
    if doc["status"] != "confirmed":
        raise Conflict(f"this ticket's booking is {doc['status']}",
                       {"code": [f"booking is {doc['status']}"]}, code="ticket-not-valid")
    if doc["fee_fen"] and method is None:
        raise ValidationFailed(f"the fee is {yuan(doc['fee_fen'])} yuan: say how it was paid",
                               {"method": ["required when there is a fee"]})
    now = clock.now()
    zone = ZoneInfo(doc["session"].get("timezone") or "Asia/Shanghai")
    paid = ({"method": method, "amount_fen": doc["fee_fen"], "by": actor.name}
            if doc["fee_fen"] else None)
    arrived = event("admissions.checked_in", {
        **facts(doc), "checked_in_at": clock.stamp(now), "fee_fen": doc["fee_fen"],
        "method": method if doc["fee_fen"] else None})
    done = bookings.find_one_and_update(
        {"_id": doc["_id"], "status": "confirmed", "checked_in_at": None},
        add_events({"$set": {"checked_in_at": clock.stamp(now), "paid": paid,
                             "day": now.astimezone(zone).date().isoformat()}}, arrived),
        projection={"outbox": 0}, return_document=True)
    if done is None:  # a scan at another door won the race: answer as a repeat
        again = bookings.find_one({"_id": doc["_id"]}, {"outbox": 0}) or doc
        return {**view(again), "repeated": True,
                "first_checked_in_at": again.get("checked_in_at")}
    return {**view(done), "repeated": False, "first_checked_in_at": done["checked_in_at"]}


def takings(bookings: Collection, actor: Actor, venue_id: str, day: date,
            form: str) -> dict[str, Any]:
    """The venue's check-ins of one local day with their fees, and totals per method."""
    _at_venue(actor, venue_id)
    docs = sorted(bookings.find({"venue_id": venue_id, "day": day.isoformat()},
                                {"outbox": 0, "mobile": 0}),
                  key=lambda d: d["checked_in_at"])
    rows = [(d["checked_in_at"], d["session"]["title"], d["_id"], d["audience"],
             d.get("adults", 0), d.get("children", 0), (d.get("paid") or {}).get("amount_fen", 0),
             yuan((d.get("paid") or {}).get("amount_fen", 0)),
             (d.get("paid") or {}).get("method") or "") for d in docs]
    totals: dict[str, int] = {}
    for row in rows:
        if row[6]:
            totals[row[8]] = totals.get(row[8], 0) + row[6]
    summary = {"venue_id": venue_id, "day": day.isoformat(), "check_ins": len(rows),
               "people": sum(r[4] + r[5] for r in rows), "total_fen": sum(totals.values()),
               "by_method": totals}
    name = f"takings-{venue_id}-{day.isoformat()}"
    if form == "csv":
        return {"filename": f"{name}.csv", "content_type": "text/csv; charset=utf-8",
                "text": write_csv(HEADER, rows)}
    if form == "xlsx":
        book = write_xlsx([("takings", [HEADER, *rows]),
                           ("totals", [("method", "amount_fen", "amount_yuan"),
                                       *[(m, f, yuan(f)) for m, f in sorted(totals.items())]])])
        return {"filename": f"{name}.xlsx", "content_type": XLSX_TYPE,
                "base64": base64.b64encode(book).decode()}
    return {**summary, "items": [dict(zip(HEADER, row, strict=True)) for row in rows]}
