"""The booking service's entrypoints: validate, call the desk, answer."""

from __future__ import annotations

from datetime import date
from typing import Any

from cachetools import TTLCache
from nameko.rpc import rpc
from nameko.timer import timer

from services.booking.claims import can_read, claim_view
from services.booking.desk import BookingDesk
from services.booking.repository import BookingRepository
from services.booking.visits import TutorVisits
from services.contracts.booking import (
    BatchView,
    ClaimQuery,
    ClaimView,
    School,
    SchoolRegistration,
    TutorVisitQuery,
    TutorVisitView,
)
from services.kit.boundary import dump, load
from services.kit.context import LogContext
from services.kit.errors import NotFound
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.mongo import Store
from services.kit.rpc_proxy import ServiceClient


def _page(schema: Any, docs: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
    return {"items": [dump(schema, d) for d in docs], "next_cursor": cursor}


class BookingService(Health):
    name = "booking"
    store = Store(BookingRepository)
    log_context = LogContext()
    venues = ServiceClient("venues")

    # Sessions and schools read in the last second, shared by this process's workers.
    recent: TTLCache = TTLCache(maxsize=4096, ttl=1.0)

    @property
    def desk(self) -> BookingDesk:
        return BookingDesk(self.store, self.venues, recent=BookingService.recent)

    # -- schools ----------------------------------------------------------------------------
    @rpc
    def register_school(self, payload: dict[str, Any]) -> dict[str, Any]:
        return dump(School, self.store.register_school(load(SchoolRegistration, payload)))

    @rpc
    def get_school(self, school_id: str) -> dict[str, Any]:
        return dump(School, self.store.school(school_id))

    # -- claims -----------------------------------------------------------------------------
    @rpc
    def create_claim(self, actor: dict[str, Any], payload: dict[str, Any],
                     request_key: str | None = None) -> dict[str, Any]:
        return dump(ClaimView, claim_view(self.desk.create_claim(actor, payload, request_key)))

    @rpc
    def get_claim(self, actor: dict[str, Any], claim_id: str) -> dict[str, Any]:
        claim = self.store.claim(claim_id)
        if not can_read(actor, claim):
            raise NotFound(f"claim {claim_id} not found", code="claim-not-found")
        return dump(ClaimView, claim_view(claim))

    @rpc
    def list_claims(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        q = load(ClaimQuery, query)
        role, org = actor.get("role"), actor.get("org")
        scope: dict[str, Any] = {}
        if role == "school":
            scope["school_id"] = org
        elif role == "venue":
            scope["venue_id"] = org
        elif q.get("school_id"):
            scope["school_id"] = q["school_id"]
        for key in ("status", "session_id"):
            if q.get(key):
                scope[key] = q[key]
        if scope.get("status") == "pending":
            scope["status"] = {"$in": ["pending", "holding"]}
        docs, cursor = self.store.list_claims(scope, q["limit"], q.get("cursor"))
        return _page(ClaimView, [claim_view(d) for d in docs], cursor)

    @rpc
    def cancel_claim(self, actor: dict[str, Any], claim_id: str,
                     payload: dict[str, Any] | None = None) -> dict[str, Any]:
        return dump(ClaimView, claim_view(self.desk.cancel_claim(actor, claim_id, payload)))

    @rpc
    def create_batch(self, actor: dict[str, Any], payload: dict[str, Any],
                     request_key: str | None = None) -> dict[str, Any]:
        desk = self.desk
        return dump(BatchView, desk.batch_view(desk.create_batch(actor, payload, request_key)))

    @rpc
    def get_batch(self, actor: dict[str, Any], batch_id: str) -> dict[str, Any]:
        batch = self.store.batch(batch_id)
        if actor.get("role") != "admin" and batch["school_id"] != actor.get("org"):
            raise NotFound(f"batch {batch_id} not found", code="batch-not-found")
        return dump(BatchView, self.desk.batch_view(batch))

    @rpc
    def record_attendance(self, actor: dict[str, Any], session_id: str,
                          payload: dict[str, Any]) -> dict[str, Any]:
        claims = self.desk.record_attendance(actor, session_id, payload)
        return {"items": [dump(ClaimView, claim_view(c)) for c in claims]}

    @rpc
    def explain_allocation(self, session_id: str) -> dict[str, Any]:
        return self.desk.explain_allocation(session_id)

    # -- tutor visits -----------------------------------------------------------------------
    @rpc
    def book_tutor_visit(self, actor: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        return self._visit(TutorVisits(self.store, self.venues).book(actor, payload))

    @rpc
    def deliver_tutor_visit(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        return self._visit(TutorVisits(self.store, self.venues).deliver(actor, visit_id))

    @rpc
    def confirm_tutor_visit(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        return self._visit(TutorVisits(self.store, self.venues).confirm(actor, visit_id))

    @rpc
    def cancel_tutor_visit(self, actor: dict[str, Any], visit_id: str,
                           reason: str = "cancelled") -> dict[str, Any]:
        return self._visit(TutorVisits(self.store, self.venues).cancel(actor, visit_id, reason))

    @rpc
    def get_tutor_visit(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        return self._visit(TutorVisits(self.store, self.venues).get(actor, visit_id))

    @rpc
    def list_tutor_visits(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        docs, cursor = TutorVisits(self.store, self.venues).list(actor,
                                                                 load(TutorVisitQuery, query))
        return {"items": [self._visit(d) for d in docs], "next_cursor": cursor}

    @staticmethod
    def _visit(doc: dict[str, Any]) -> dict[str, Any]:
        from services.booking.claims import history_list

        return dump(TutorVisitView, {**doc, "date": date.fromisoformat(doc["date"]),
                                     "history": history_list(doc)})

    # -- what others tell us ----------------------------------------------------------------
    @subscribe("venues.venue_registered")
    def on_venue_registered(self, event: dict[str, Any]) -> None:
        self.store.record_venue(event["data"])

    @subscribe("venues.session_cancelled")
    def on_session_cancelled(self, event: dict[str, Any]) -> None:
        self.desk.session_cancelled(event["data"]["session_id"], event["data"]["reason"])

    @subscribe("venues.session_rescheduled")
    def on_session_rescheduled(self, event: dict[str, Any]) -> None:
        data = event["data"]
        self.store.reschedule_trips(data["session_id"], data["starts_at"], data["ends_at"])

    @subscribe("venues.capacity_changed")
    def on_capacity_changed(self, event: dict[str, Any]) -> None:
        self.desk.promote(event["data"]["session_id"])

    # -- timers -----------------------------------------------------------------------------
    @timer(interval=1)
    def sweep(self) -> None:
        """Allocate closed windows; finish claims and batches a crash interrupted."""
        self.desk.sweep()
