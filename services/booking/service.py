"""The booking service's entrypoints: verify the actor, call the desk, answer."""

from __future__ import annotations

import time
from typing import Any

from cachetools import TTLCache
from nameko.rpc import rpc
from nameko.timer import timer

from services.booking.allocation_reads import allocation_view
from services.booking.attendance import record_attendance
from services.booking.desk import BookingDesk
from services.booking.directory import SchoolDirectory
from services.booking.ports import SESSION_KEEP_S, BoundedHistory
from services.booking.repository import BookingRepository
from services.booking.schools import list_schools, readable_school, register_school
from services.contracts.booking import (
    AllocationView,
    BatchView,
    ClaimQuery,
    ClaimView,
    School,
    SchoolQuery,
    TutorVisitQuery,
    TutorVisitView,
)
from services.kit.actor import Actors
from services.kit.boundary import dump, load
from services.kit.context import LogContext
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.migrations import checked_mapping
from services.kit.mongo import Store
from services.kit.rpc_proxy import ServiceClient

RECOVERY_EVERY_S = 5.0  # how often the sweep looks for interrupted claims and batches


def _claims(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dump(ClaimView, d) for d in docs]


def _visits(desk: BookingDesk, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [dump(TutorVisitView, d) for d in desk.visits.views(docs)]


class BookingService(Health):
    name = "booking"
    store = Store(BookingRepository)
    log_context = LogContext()
    venues = ServiceClient("venues")
    rosters = ServiceClient("notifications")  # class_pupils: attendance per pupil
    monitoring = ServiceClient("monitoring")  # school_history: what window allocation weighs
    actors = Actors()

    # Shared by this process's workers: sessions read for claim checks (the hold proves
    # them, ports.Lookups) and the school directory (directory.SchoolDirectory).
    sessions_kept: TTLCache = TTLCache(maxsize=4096, ttl=SESSION_KEEP_S)
    schools_known = SchoolDirectory()
    last_recovery = float("-inf")  # when the sweep last looked for interrupted work

    @property
    def desk(self) -> BookingDesk:
        return BookingDesk(self.store, self.venues, sessions=BookingService.sessions_kept,
                           history=BoundedHistory(self.monitoring),
                           schools=BookingService.schools_known)

    # -- schools ----------------------------------------------------------------------------
    @rpc
    def register_school(self, actor: dict[str, Any], payload: dict[str, Any],
                        request_key: str | None = None) -> dict[str, Any]:
        school = register_school(self.store, self.actors(actor), payload, request_key)
        BookingService.schools_known.learn(school)
        return dump(School, school)

    @rpc
    def get_school(self, actor: dict[str, Any], school_id: str) -> dict[str, Any]:
        who = self.actors(actor)
        return dump(School, readable_school(who, self.store.school(school_id)))

    @rpc
    def list_schools(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        docs, cursor = list_schools(self.store, self.actors(actor), load(SchoolQuery, query))
        return {"items": [dump(School, d) for d in docs], "next_cursor": cursor}

    # -- districts: names to ids (`kepu migrate districts`, kit.migrations) ------------------
    @rpc
    def district_names(self, actor: dict[str, Any]) -> list[str]:
        self.actors(actor).require(detail="only an admin migrates districts")
        return sorted(self.store.district_names())

    @rpc
    def adopt_district_ids(self, mapping: dict[str, str], actor: dict[str, Any]
                           ) -> dict[str, int]:
        self.actors(actor).require(detail="only an admin migrates districts")
        adopted = self.store.adopt_district_ids(checked_mapping(mapping))
        BookingService.schools_known.forget()  # schools' district ids changed
        return adopted

    # -- claims -----------------------------------------------------------------------------
    @rpc
    def create_claim(self, actor: dict[str, Any], payload: dict[str, Any],
                     request_key: str | None = None) -> dict[str, Any]:
        desk = self.desk
        claim = desk.claims.create(self.actors(actor), payload, request_key)
        return _claims(desk.reads.views([claim]))[0]

    @rpc
    def get_claim(self, actor: dict[str, Any], claim_id: str) -> dict[str, Any]:
        return dump(ClaimView, self.desk.reads.get(self.actors(actor), claim_id))

    @rpc
    def list_claims(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        who = self.actors(actor)
        docs, cursor = self.desk.reads.list(who, load(ClaimQuery, query))
        return {"items": _claims(docs), "next_cursor": cursor}

    @rpc
    def cancel_claim(self, actor: dict[str, Any], claim_id: str,
                     payload: dict[str, Any] | None = None) -> dict[str, Any]:
        desk = self.desk
        claim = desk.claims.cancel(self.actors(actor), claim_id, payload)
        return _claims(desk.reads.views([claim]))[0]

    @rpc
    def create_batch(self, actor: dict[str, Any], payload: dict[str, Any],
                     request_key: str | None = None) -> dict[str, Any]:
        desk = self.desk
        batch = desk.batches.create(self.actors(actor), payload, request_key)
        return dump(BatchView, desk.batches.view(batch))

    @rpc
    def get_batch(self, actor: dict[str, Any], batch_id: str) -> dict[str, Any]:
        desk = self.desk
        return dump(BatchView, desk.batches.view(desk.reads.batch(self.actors(actor), batch_id)))

    @rpc
    def record_attendance(self, actor: dict[str, Any], session_id: str,
                          payload: dict[str, Any]) -> dict[str, Any]:
        claims = record_attendance(self.store, self.rosters, self.actors(actor), session_id,
                                   payload)
        return {"items": _claims(self.desk.reads.views(claims))}

    @rpc
    def get_allocation(self, actor: dict[str, Any], session_id: str) -> dict[str, Any]:
        return dump(AllocationView, allocation_view(self.store, self.actors(actor),
                                                    session_id))

    @rpc
    def explain_allocation(self, session_id: str) -> dict[str, Any]:
        return self.desk.windows.explain(session_id)

    # -- tutor visits -----------------------------------------------------------------------
    @rpc
    def book_tutor_visit(self, actor: dict[str, Any], payload: dict[str, Any],
                         request_key: str | None = None) -> dict[str, Any]:
        desk = self.desk
        return _visits(desk, [desk.visits.book(self.actors(actor), payload, request_key)])[0]

    @rpc
    def deliver_tutor_visit(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        desk = self.desk
        return _visits(desk, [desk.visits.deliver(self.actors(actor), visit_id)])[0]

    @rpc
    def confirm_tutor_visit(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        desk = self.desk
        return _visits(desk, [desk.visits.confirm(self.actors(actor), visit_id)])[0]

    @rpc
    def cancel_tutor_visit(self, actor: dict[str, Any], visit_id: str,
                           reason: str = "cancelled") -> dict[str, Any]:
        desk = self.desk
        return _visits(desk, [desk.visits.cancel(self.actors(actor), visit_id, reason)])[0]

    @rpc
    def get_tutor_visit(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        desk = self.desk
        return _visits(desk, [desk.visits.get(self.actors(actor), visit_id)])[0]

    @rpc
    def list_tutor_visits(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        desk = self.desk
        docs, cursor = desk.visits.list(self.actors(actor), load(TutorVisitQuery, query))
        return {"items": _visits(desk, docs), "next_cursor": cursor}

    # -- what others tell us ----------------------------------------------------------------
    @subscribe("identity.district_registered")
    def on_district_registered(self, event: dict[str, Any]) -> None:
        self.store.districts.learn(event["data"])

    @subscribe("venues.venue_registered")
    def on_venue_registered(self, event: dict[str, Any]) -> None:
        self.store.record_venue(event["data"])

    @subscribe("venues.venue_updated")
    def on_venue_updated(self, event: dict[str, Any]) -> None:
        self.store.record_venue(event["data"])

    @subscribe("venues.session_cancelled")
    def on_session_cancelled(self, event: dict[str, Any]) -> None:
        BookingService.sessions_kept.pop(event["data"]["session_id"], None)
        self.desk.claims.session_cancelled(event["data"]["session_id"], event["data"]["reason"])

    @subscribe("venues.session_rescheduled")
    def on_session_rescheduled(self, event: dict[str, Any]) -> None:
        data = event["data"]
        BookingService.sessions_kept.pop(data["session_id"], None)
        self.store.reschedule_trips(data["session_id"], data["starts_at"], data["ends_at"])

    @subscribe("venues.session_updated")
    def on_session_updated(self, event: dict[str, Any]) -> None:
        data = event["data"]
        BookingService.sessions_kept.pop(data["session_id"], None)
        self.desk.windows.window_moved(data["session_id"], data.get("window_closes_at"))

    @subscribe("venues.capacity_changed")
    def on_capacity_changed(self, event: dict[str, Any]) -> None:
        self.desk.waitlist.promote(event["data"]["session_id"])

    # -- timers -----------------------------------------------------------------------------
    @timer(interval=1)
    def sweep(self) -> None:
        """Allocate closed windows each second; every RECOVERY_EVERY_S finish claims,
        releases and batches a crash interrupted (they wait 10 s or a lease anyway)."""
        now = time.monotonic()
        recover = now - BookingService.last_recovery >= RECOVERY_EVERY_S
        if recover:
            BookingService.last_recovery = now
        self.desk.recovery.sweep(interrupted=recover)
