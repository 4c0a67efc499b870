"""The admissions service's entrypoints: family bookings (public: one-time codes, passes,
manage links), teacher-training seats (school staff), check-in and takings (venues).

Public calls carry no actor: a guardian proves a number with a one-time code and then
holds a signed pass or manage token. Staff calls carry the gateway's signed actor,
verified here (`self.actors`). Nothing here logs a mobile number.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from cachetools import TTLCache
from nameko.rpc import rpc
from nameko.timer import timer

from services.admissions import arrivals, tickets, upkeep
from services.admissions.bookings import Bookings
from services.admissions.codes import OneTimeCodes
from services.admissions.repository import AdmissionsRepository
from services.admissions.settings import AdmissionsSettings
from services.admissions.training import Training, register
from services.contracts.admissions import (
    CheckInRequest,
    CodeCheck,
    CodeRequest,
    FamilyBookingRequest,
    RegisterQuery,
    TakingsQuery,
    TrainingBookingRequest,
)
from services.kit.actor import Actors
from services.kit.boundary import load
from services.kit.context import LogContext
from services.kit.errors import Conflict, NotFound
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.mongo import Store
from services.kit.rpc_proxy import ServiceClient

log = logging.getLogger("kepu.admissions")

SETTINGS = AdmissionsSettings.from_env()
Signed = dict[str, Any] | None


class RecentSessions:
    """Venues, with sessions read at most once a second per process: a burst of bookings on
    one popular session asks venues once, not once per booking. Only the checks before
    the hold read it; the hold itself is decided on venues' current state."""

    recent: TTLCache = TTLCache(maxsize=4096, ttl=1.0)

    def __init__(self, venues: Any) -> None:
        self.venues = venues

    def get_session(self, session_id: str) -> dict[str, Any]:
        found = self.recent.get(session_id)
        if found is None:
            found = self.recent[session_id] = self.venues.get_session(session_id)
        return found

    def hold(self, session_id: str, claim_id: str, party: str, seats: int) -> dict[str, Any]:
        return self.venues.hold(session_id, claim_id, party, seats)

    def release(self, session_id: str, claim_id: str) -> dict[str, Any]:
        return self.venues.release(session_id, claim_id)


class AdmissionsService(Health):
    name = "admissions"
    store = Store(AdmissionsRepository)
    venues = ServiceClient("venues")
    actors = Actors()
    log_context = LogContext()

    @property
    def secret(self) -> str:
        return self.store.settings.jwt_secret

    @property
    def desk(self) -> Bookings:
        return Bookings(self.store.db.bookings, self.store.once, RecentSessions(self.venues),
                        self.secret, SETTINGS)

    @property
    def codes(self) -> OneTimeCodes:
        return OneTimeCodes(self.store.db.codes, self.secret, SETTINGS)

    # -- families (public) ------------------------------------------------------------------
    @rpc
    def family_session(self, session_id: str) -> dict[str, Any]:
        """One family session for the public booking page (others are not found here)."""
        session = self.venues.get_session(session_id)
        if session.get("audience") != "family":
            raise NotFound(f"family session {session_id} not found", code="session-not-found")
        return session

    @rpc
    def send_code(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = load(CodeRequest, payload)
        return self.codes.send(data["mobile"])

    @rpc
    def verify_code(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = load(CodeCheck, payload)
        return self.codes.verify(data["mobile"], data["code"])

    @rpc
    def book_family(self, session_id: str, payload: dict[str, Any],
                    request_key: str | None = None) -> dict[str, Any]:
        data = load(FamilyBookingRequest, payload)
        mobile = self.codes.mobile_of(data.pop("verification"))
        return self.desk.book_family(session_id, mobile, data, request_key)

    @rpc
    def family_booking(self, token: str) -> dict[str, Any]:
        desk = self.desk
        return desk.show(desk.by_token(token))

    @rpc
    def confirm_family(self, token: str) -> dict[str, Any]:
        return self.desk.confirm(token)

    @rpc
    def cancel_family(self, token: str) -> dict[str, Any]:
        desk = self.desk
        return desk.cancel(desk.by_token(token), "cancelled by the household")

    @rpc
    def ticket_image(self, token: str, kind: str = "svg") -> dict[str, Any]:
        """The ticket's QR code (a confirmed booking only)."""
        doc = self.desk.by_token(token)
        if doc["status"] != "confirmed":
            raise Conflict(f"this booking is {doc['status']}: no ticket", code="no-ticket")
        if kind == "png":
            return {"content_type": "image/png",
                    "base64": base64.b64encode(tickets.qr_png(doc["ticket_code"])).decode()}
        return {"content_type": "image/svg+xml", "text": tickets.qr_svg(doc["ticket_code"])}

    # -- teachers (school staff) -----------------------------------------------------------
    @rpc
    def book_training(self, actor: Signed, session_id: str, payload: dict[str, Any],
                      request_key: str | None = None) -> dict[str, Any]:
        who = self.actors(actor)
        data = load(TrainingBookingRequest, payload)
        return self.training().book(who, session_id, data["attendees"], request_key)

    @rpc
    def cancel_training(self, actor: Signed, booking_id: str) -> dict[str, Any]:
        return self.training().cancel(self.actors(actor), booking_id)

    @rpc
    def school_training(self, actor: Signed, query: dict[str, Any]) -> dict[str, Any]:
        who = self.actors(actor)
        q = load(RegisterQuery, query)
        return self.training().of_school(who, q["limit"], q.get("cursor"))

    def training(self) -> Training:
        return Training(self.desk, self.store.db.schools)

    # -- venues ----------------------------------------------------------------------------
    @rpc
    def session_register(self, actor: Signed, session_id: str, query: dict[str, Any]
                         ) -> dict[str, Any]:
        who = self.actors(actor)
        q = load(RegisterQuery, query)
        session = self.venues.get_session(session_id)
        return register(self.store.db.bookings, who, session, q["limit"], q.get("cursor"))

    @rpc
    def check_in(self, actor: Signed, venue_id: str, payload: dict[str, Any]
                 ) -> dict[str, Any]:
        who = self.actors(actor)
        data = load(CheckInRequest, payload)
        return arrivals.check_in(self.store.db.bookings, who, venue_id, data["code"],
                                 data.get("method"))

    @rpc
    def takings(self, actor: Signed, venue_id: str, query: dict[str, Any]) -> dict[str, Any]:
        who = self.actors(actor)
        q = load(TakingsQuery, query)
        return arrivals.takings(self.store.db.bookings, who, venue_id, q["day"], q["format"])

    # -- events ----------------------------------------------------------------------------
    @subscribe("booking.school_registered")
    def on_school_registered(self, event: dict[str, Any]) -> None:
        self.store.learn_school(event["data"])

    @subscribe("venues.session_cancelled")
    def on_session_cancelled(self, event: dict[str, Any]) -> None:
        data = event["data"]
        self.desk.session_cancelled(data["session_id"], data["reason"])

    @subscribe("venues.session_rescheduled")
    def on_session_rescheduled(self, event: dict[str, Any]) -> None:
        self.desk.session_rescheduled(event["data"])

    # -- upkeep ----------------------------------------------------------------------------
    @timer(interval=SETTINGS.sweep_s)
    def sweep(self) -> None:
        """Expire unconfirmed holds (seats back, the waitlist moves), remind, erase numbers."""
        desk = self.desk
        expired = desk.expire_holds()
        reminded = upkeep.send_reminders(desk, SETTINGS.reminder_hours)
        erased = upkeep.erase_numbers(self.store.db.bookings)
        if expired or reminded or erased:
            log.info("admissions upkeep", extra={"expired": expired, "reminded": reminded,
                                                 "erased": erased})
