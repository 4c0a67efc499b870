"""Bookings: a household's seats on a family session, a teacher's on a training session.

A booking is written first (status `pending`, with its hold's expiry), then its seats are
held by venues' one atomic hold keyed by the booking id, exactly as a school claim's:

- held: the household confirms within `hold_s` (the manage link), then it is confirmed
  and gets its ticket; an unconfirmed hold expires and the sweep releases it;
- full: the booking waits (`waitlisted`, in `wait_key` order); a released seat promotes
  the first in line, strictly in order (a booking that does not fit stops the line);
- over the household's limit, or a session closed: the booking is removed and refused.

One booking per household per session is a unique index on (session_id, household,
slot): `slot` is "active" while a booking stands (or its own id when the venue allows
more than one) and its own id once it ended, so a cancelled household may book again.
A crash between the write and the hold leaves a `pending` booking: the sweep expires it
and releases its hold (release is idempotent). Cancellation and expiry mark the booking
first and release after (`seats_released`), and the sweep finishes a release a crash
interrupted.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any, Protocol

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.admissions import tickets
from services.admissions.passes import household_of, mask_mobile, open_pass, seal
from services.admissions.settings import AdmissionsSettings
from services.kit import clock
from services.kit.errors import Conflict, NotFound, ValidationFailed
from services.kit.outbox import add_events, event
from services.kit.pages import sort_key
from services.kit.request_keys import RequestKeys

log = logging.getLogger("kepu.admissions")

MANAGE = "manage"
ACTIVE = ("pending", "held", "confirmed", "waitlisted")
SEATED = ("held", "confirmed")


class Venues(Protocol):
    def get_session(self, session_id: str) -> dict[str, Any]: ...
    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int) -> dict: ...
    def release(self, session_id: str, claim_id: str) -> dict[str, Any]: ...


def fee_of(session: dict[str, Any], adults: int, children: int) -> int:
    """The fee in fen: each person at their category's price."""
    prices = session.get("prices_fen") or {}
    base = session.get("price_fen", 0)
    return adults * prices.get("adult", base) + children * prices.get("child", base)


def snapshot(session: dict[str, Any]) -> dict[str, Any]:
    """What a booking keeps of its session: enough for tickets, reminders and the cut-off."""
    return {"title": session["title"], "starts_at": session["starts_at"],
            "ends_at": session["ends_at"], "venue_name": (session.get("venue") or {}).get("name"),
            "address": (session.get("venue") or {}).get("address"),
            "cancel_cutoff_hours": session.get("cancel_cutoff_hours", 24),
            "timezone": session.get("timezone", "Asia/Shanghai")}


def check_open(session: dict[str, Any], audience: str) -> None:
    if session.get("audience") != audience:
        raise ValidationFailed(f"this session is for {session.get('audience')}, not {audience}",
                               {"session_id": [f"audience is {session.get('audience')}"]},
                               code="wrong-audience")
    if session["status"] != "open":
        raise Conflict(f"this session is {session['status']}", {"session_id": [
            f"session is {session['status']}"]}, code="session-closed")


def view(doc: dict[str, Any], position: int | None = None) -> dict[str, Any]:
    keys = ("booking_id", "session_id", "venue_id", "audience", "status", "adults",
            "children", "people", "child_names", "attendee", "subject", "school_id",
            "school_name", "mobile_masked", "fee_fen", "hold_expires_at", "checked_in_at",
            "paid", "created_at")
    out = {key: doc.get(key) for key in keys}
    out["child_names"] = doc.get("child_names") or []
    out["ticket_code"] = doc.get("ticket_code") if doc["status"] == "confirmed" else None
    out["session"] = doc.get("session")
    out["waitlist_position"] = position
    return out


def facts(doc: dict[str, Any]) -> dict[str, Any]:
    """A booking as events tell it: no contact, no names."""
    return {key: doc.get(key) for key in ("booking_id", "session_id", "venue_id", "district_id",
                                          "audience", "school_id", "adults", "children",
                                          "people")}


class Bookings:
    def __init__(self, bookings: Collection, once: RequestKeys, venues: Venues, secret: str,
                 settings: AdmissionsSettings) -> None:
        self.bookings = bookings
        self.once = once
        self.venues = venues
        self.secret = secret
        self.settings = settings

    # -- reading ---------------------------------------------------------------------------
    def document(self, booking_id: str) -> dict[str, Any]:
        doc = self.bookings.find_one({"_id": booking_id}, {"outbox": 0})
        if doc is None:
            raise NotFound(f"booking {booking_id} not found", code="booking-not-found")
        return doc

    def by_token(self, token: Any) -> dict[str, Any]:
        return self.document(open_pass(self.secret, MANAGE, token)["b"])

    def manage_token(self, booking_id: str) -> str:
        return seal(self.secret, MANAGE, {"b": booking_id})

    def manage_link(self, booking_id: str) -> str:
        return f"{self.settings.public_url}/family/bookings/{self.manage_token(booking_id)}"

    def position(self, doc: dict[str, Any]) -> int | None:
        if doc["status"] != "waitlisted":
            return None
        # compared here, not in the query: sort keys are ordered in Python (kit/mongo.py)
        line = self.bookings.find({"session_id": doc["session_id"], "status": "waitlisted"},
                                  {"wait_key": 1})
        return 1 + sum(1 for other in line if other["wait_key"] < doc["wait_key"])

    def show(self, doc: dict[str, Any]) -> dict[str, Any]:
        return view(doc, self.position(doc))

    # -- booking ---------------------------------------------------------------------------
    def book_family(self, session_id: str, mobile: str, request: dict[str, Any],
                    request_key: str | None = None) -> dict[str, Any]:
        """Hold seats for a verified household, or put it on the waitlist when full."""
        household = household_of(self.secret, mobile)
        booking_id, retried = self.once.new_id("family-booking", "adm", household, request_key,
                                               session_id, request)
        if retried and (earlier := self.bookings.find_one({"_id": booking_id})):
            return {**self.show(earlier), "manage_token": self.manage_token(booking_id)}
        session = self.venues.get_session(session_id)
        check_open(session, "family")
        adults, children = request["adults"], request["children"]
        most = session.get("max_people_per_booking")
        if most is not None and adults + children > most:
            raise ValidationFailed(f"at most {most} people per booking",
                                   {"adults": [f"at most {most} people per booking"]},
                                   code="over-booking-limit")
        doc = self._new(booking_id, session, "family", household, household,
                        adults=adults, children=children,
                        child_names=request.get("child_names") or [], mobile=mobile,
                        mobile_masked=mask_mobile(mobile),
                        language=request.get("language", "zh-CN"))
        done = self._seat(doc, session)
        return {**self.show(done), "manage_token": self.manage_token(booking_id)}

    def _new(self, booking_id: str, session: dict[str, Any], audience: str, household: str,
             party: str, **fields: Any) -> dict[str, Any]:
        now = clock.stamp()
        people = fields.get("adults", 0) + fields.get("children", 0)
        again = session.get("households_may_book_again") and audience == "family"
        ends = clock.parse(session["ends_at"])
        return {
            "_id": booking_id, "booking_id": booking_id, "session_id": session["session_id"],
            "venue_id": session["venue_id"], "district_id": (session.get("venue") or {}).get(
                "district_id"), "audience": audience, "household": household, "party": party,
            "slot": booking_id if again else "active", "status": "pending",
            "people": people, "fee_fen": fee_of(session, fields.get("adults", 0),
                                                 fields.get("children", 0)),
            "ticket_code": tickets.new_code(), "hold_expires_at": clock.later(
                self.settings.hold_s), "seats_released": False, "checked_in_at": None,
            "paid": None, "session": snapshot(session), "reminded": False,
            "erase_after": clock.stamp(ends + timedelta(days=self.settings.erase_days)),
            "created_at": now, "sort_key": sort_key(now, booking_id), **fields}

    def _seat(self, doc: dict[str, Any], session: dict[str, Any],
              confirm: bool = False) -> dict[str, Any]:
        """Write the booking, hold its seats, and record what the hold answered."""
        try:
            self.bookings.insert_one(doc)
        except DuplicateKeyError:
            if (earlier := self.bookings.find_one({"_id": doc["_id"]})) is not None:
                return earlier
            raise Conflict("this household already has a booking for this session",
                           {"session_id": ["already booked by this household"]},
                           code="already-booked") from None
        answer = self.venues.hold(doc["session_id"], doc["_id"], doc["party"], doc["people"])
        if answer["ok"]:
            if confirm:
                return self._confirm(doc, "pending", "ticket")
            return self._set(doc, "pending", {"status": "held"})
        if answer["reason"] == "full":
            line = sort_key(clock.stamp(), f"{time.time_ns():020d}", doc["_id"])
            return self._set(doc, "pending", {"status": "waitlisted", "wait_key": line,
                                              "hold_expires_at": None})
        self.bookings.delete_one({"_id": doc["_id"], "status": "pending"})
        if answer["reason"] == "over_school_limit":
            limit = "household" if doc["audience"] == "family" else "school"
            raise Conflict(f"that is more seats than the venue allows one {limit}",
                           {"adults" if limit == "household" else "attendees": [
                               f"over the {limit} limit"]}, code=f"over-{limit}-limit")
        raise Conflict(f"this session is {answer['reason']}",
                       {"session_id": [f"session is {answer['reason']}"]},
                       code="session-closed")

    def _set(self, doc: dict[str, Any], was: str, sets: dict[str, Any],
             *envelopes: dict[str, Any]) -> dict[str, Any]:
        done = self.bookings.find_one_and_update(
            {"_id": doc["_id"], "status": was}, add_events({"$set": sets}, *envelopes),
            projection={"outbox": 0}, return_document=True)
        if done is None:
            raise Conflict(f"booking {doc['_id']} changed meanwhile; look again",
                           code="booking-changed")
        return done

    def _confirm(self, doc: dict[str, Any], was: str, kind: str) -> dict[str, Any]:
        return self._set(doc, was, {"status": "confirmed", "hold_expires_at": None,
                                    "confirmed_at": clock.stamp()},
                         event("admissions.booking_confirmed",
                               {**facts(doc), "fee_fen": doc["fee_fen"]}),
                         *self._message(doc, kind))

    def _message(self, doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
        """The guardian's SMS about this booking, if it has a number to send to."""
        if not doc.get("mobile"):
            return []
        session = doc["session"]
        link = self.manage_link(doc["_id"]) if kind in ("ticket", "promoted", "reminder") else None
        return [event("admissions.guardian_message", {
            "kind": kind, "key": f"{kind}|{doc['_id']}", "contact": doc["mobile"],
            "language": doc.get("language") or "zh-CN", "booking_id": doc["_id"],
            "session_id": doc["session_id"], "title": session["title"],
            "venue_name": session.get("venue_name"), "starts_at": session["starts_at"],
            "ticket_code": doc["ticket_code"] if kind != "cancelled" else None,
            "link": link})]

    def confirm(self, token: Any) -> dict[str, Any]:
        """The household confirms its held seats: the booking gets its ticket."""
        doc = self.by_token(token)
        if doc["status"] == "confirmed":
            return self.show(doc)
        if doc["status"] != "held" or (doc.get("hold_expires_at") or "") <= clock.stamp():
            raise Conflict(f"this booking is {doc['status']} and cannot be confirmed",
                           {"booking": [f"booking is {doc['status']}"]}, code="not-held")
        return self.show(self._confirm(doc, "held", "ticket"))

    # -- ending ----------------------------------------------------------------------------
    def cancel(self, doc: dict[str, Any], reason: str, check_cutoff: bool = True
               ) -> dict[str, Any]:
        """End a booking (its seats go back, the waitlist moves); until the cut-off."""
        if doc["status"] not in ACTIVE:
            return self.show(doc)
        if check_cutoff and doc["status"] in SEATED:
            cutoff = clock.parse(doc["session"]["starts_at"]) - timedelta(
                hours=doc["session"]["cancel_cutoff_hours"])
            if clock.now() >= cutoff:
                raise Conflict("too late to cancel: the cut-off has passed",
                               {"booking": ["past the cancellation cut-off"]},
                               code="past-cutoff")
        envelopes = []
        if doc["status"] == "confirmed":
            envelopes.append(event("admissions.booking_cancelled",
                                   {**facts(doc), "reason": reason}))
        envelopes += self._message(doc, "cancelled")
        done = self._set(doc, doc["status"], {"status": "cancelled", "slot": doc["_id"],
                                              "cancel_reason": reason,
                                              "cancelled_at": clock.stamp()}, *envelopes)
        self.finish_release(done)
        return self.show(done)

    def finish_release(self, doc: dict[str, Any]) -> None:
        """Give an ended booking's seats back, then move the waitlist (idempotent)."""
        self.venues.release(doc["session_id"], doc["_id"])
        self.bookings.update_one({"_id": doc["_id"]}, {"$set": {"seats_released": True}})
        self.promote(doc["session_id"])

    def promote(self, session_id: str) -> int:
        """Seat waitlisted bookings in order while they fit; the first that does not stops."""
        promoted = 0
        line = self.bookings.find({"session_id": session_id, "status": "waitlisted"},
                                  {"wait_key": 1})
        for doc in sorted(line, key=lambda d: d["wait_key"]):
            doc = self.document(doc["_id"])
            answer = self.venues.hold(session_id, doc["_id"], doc["party"], doc["people"])
            if not answer["ok"]:
                break
            try:
                self._confirm(doc, "waitlisted", "promoted")
            except Conflict:  # cancelled while it waited: give the seats back
                self.venues.release(session_id, doc["_id"])
                continue
            promoted += 1
        return promoted

    def expire_holds(self, limit: int = 200) -> int:
        """Unconfirmed holds past their time end; crashed releases are finished."""
        now = clock.stamp()
        ended = 0
        for doc in list(self.bookings.find(
                {"status": {"$in": ["pending", "held"]}, "hold_expires_at": {"$lte": now}},
                {"outbox": 0}).limit(limit)):
            try:
                done = self._set(doc, doc["status"], {"status": "expired", "slot": doc["_id"]},
                                 *self._message(doc, "expired"))
            except Conflict:
                continue
            self.finish_release(done)
            ended += 1
        for doc in list(self.bookings.find({"status": {"$in": ["cancelled", "expired"]},
                                            "seats_released": False}).limit(limit)):
            self.finish_release(doc)
        return ended

    def session_cancelled(self, session_id: str, reason: str) -> int:
        """The venue cancelled the session: every booking on it ends, guardians are told."""
        ended = 0
        for doc in list(self.bookings.find({"session_id": session_id,
                                            "status": {"$in": list(ACTIVE)}}, {"outbox": 0})):
            envelopes = self._message(doc, "cancelled")
            if doc["status"] == "confirmed":
                envelopes.append(event("admissions.booking_cancelled",
                                       {**facts(doc), "reason": reason}))
            try:
                self._set(doc, doc["status"], {"status": "cancelled", "slot": doc["_id"],
                                               "cancel_reason": reason,
                                               "seats_released": True}, *envelopes)
            except Conflict:
                continue
            ended += 1
        return ended

    def session_rescheduled(self, data: dict[str, Any]) -> int:
        return self.bookings.update_many(
            {"session_id": data["session_id"]},
            {"$set": {"session.starts_at": data["starts_at"], "session.ends_at": data["ends_at"],
                      "reminded": False}}).modified_count

