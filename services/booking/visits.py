"""Tutor visits into schools (请进来): booked by the school, delivered, confirmed.

Each step belongs to one party: the school books and confirms, the tutor's venue marks it
delivered; either may cancel before confirmation, and a confirmed visit may be cancelled
by the school (funding reverses the subsidy). The confirmation carries what the funding
service needs to accrue the tutor's subsidy: tutor and level, school and district, day,
hours and students.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from services.booking.claims import history_entry
from services.booking.repository import BookingRepository
from services.contracts.booking import TutorVisitRequest
from services.contracts.terms import SHANGHAI, term_of
from services.kit import clock
from services.kit.boundary import load
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.kit.ids import new_id
from services.kit.outbox import event


def _data(visit: dict[str, Any]) -> dict[str, Any]:
    keys = ("visit_id", "tutor_id", "tutor_name", "tutor_level", "venue_id", "school_id",
            "district", "date", "term", "hours", "students", "subject")
    data = {k: visit.get(k) for k in keys}
    data["date"] = date.fromisoformat(visit["date"])
    return data


class TutorVisits:
    def __init__(self, repo: BookingRepository, venues: Any) -> None:
        self.repo = repo
        self.venues = venues

    def book(self, actor: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        if not actor or actor.get("role") != "school":
            raise Forbidden("only school staff book tutor visits for their school")
        request = load(TutorVisitRequest, payload)
        school = self.repo.school(actor["org"])
        try:
            tutor = self.venues.get_tutor(request["tutor_id"])
        except NotFound:
            raise ValidationFailed("no such tutor", {"tutor_id": ["no such tutor"]}) from None
        day: date = request["date"]
        if day < clock.now().astimezone(SHANGHAI).date():
            raise ValidationFailed("a visit cannot be booked in the past",
                                   {"date": ["date is in the past"]})
        if date.fromisoformat(str(tutor["certified_until"])) < day:
            raise ValidationFailed(
                f"{tutor['name']}'s certification runs out on {tutor['certified_until']}",
                {"tutor_id": ["the tutor's certification (vetting) expires before this date"]})
        visit_id = new_id("vis")
        at = clock.stamp()
        key, entry = history_entry("booked", f"school:{actor.get('sub')}")
        visit = {"_id": visit_id, "visit_id": visit_id, "tutor_id": tutor["tutor_id"],
                 "tutor_name": tutor["name"], "tutor_level": tutor["level"],
                 "venue_id": tutor["venue_id"], "school_id": school["school_id"],
                 "district": school["district"], "date": day.isoformat(),
                 "term": term_of(day), "hours": request["hours"],
                 "students": request["students"], "subject": request["subject"],
                 "status": "booked", "created_at": at, "updated_at": at,
                 "history": {key.split(".", 1)[1]: entry}, "list_key": clock.sort_key(at, visit_id)}
        self.repo.insert_visit(visit, event("booking.tutor_visit_booked", _data(visit)))
        return visit

    def _owned(self, actor: dict[str, Any], visit_id: str, role: str) -> dict[str, Any]:
        visit = self.repo.visit(visit_id)
        owner = visit["school_id"] if role == "school" else visit["venue_id"]
        if not actor or actor.get("role") != role:
            raise Forbidden(f"only the {role} may do this")
        if actor.get("org") != owner:
            raise NotFound(f"tutor visit {visit_id} not found", code="visit-not-found")
        return visit

    def deliver(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        visit = self._owned(actor, visit_id, "venue")
        today = clock.now().astimezone(SHANGHAI).date()
        if date.fromisoformat(visit["date"]) > today:
            raise Conflict("a visit can be marked delivered on or after its day",
                           code="visit-not-yet-due")
        return self._move(visit, ("booked",), "delivered", actor, "booking.tutor_visit_delivered")

    def confirm(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        visit = self._owned(actor, visit_id, "school")
        return self._move(visit, ("delivered",), "confirmed", actor,
                          "booking.tutor_visit_confirmed")

    def cancel(self, actor: dict[str, Any], visit_id: str, reason: str) -> dict[str, Any]:
        role = (actor or {}).get("role")
        if role not in ("school", "venue"):
            raise Forbidden("only the school or the tutor's venue may cancel a visit")
        visit = self._owned(actor, visit_id, role)
        allowed = ("booked", "delivered", "confirmed") if role == "school" else ("booked",)
        if visit["status"] not in allowed:
            raise Conflict(f"a {visit['status']} visit cannot be cancelled by the {role}",
                           code="visit-not-cancellable")
        cancelled = event("booking.tutor_visit_cancelled", {
            **_data(visit), "previous_status": visit["status"], "reason": reason})
        done = self.repo.transition_visit(visit_id, (visit["status"],), "cancelled",
                                          f"{role}:{actor.get('sub')}", reason, (cancelled,))
        if done is None:
            raise Conflict("the visit changed meanwhile; try again", code="visit-changed")
        return done

    def _move(self, visit: dict[str, Any], from_: tuple[str, ...], to: str,
              actor: dict[str, Any], event_type: str) -> dict[str, Any]:
        if visit["status"] == to:
            return visit  # a repeat of the same step is harmless
        if visit["status"] not in from_:
            raise Conflict(f"a {visit['status']} visit cannot become {to}",
                           code="visit-wrong-state")
        done = self.repo.transition_visit(visit["_id"], from_, to,
                                          f"{actor['role']}:{actor.get('sub')}",
                                          events=(event(event_type, _data(visit)),))
        if done is None:
            raise Conflict("the visit changed meanwhile; try again", code="visit-changed")
        return done

    def get(self, actor: dict[str, Any], visit_id: str) -> dict[str, Any]:
        visit = self.repo.visit(visit_id)
        role, org = (actor or {}).get("role"), (actor or {}).get("org")
        if role in ("admin", "finance"):
            return visit
        if (role == "school" and visit["school_id"] == org) or \
                (role == "venue" and visit["venue_id"] == org):
            return visit
        raise NotFound(f"tutor visit {visit_id} not found", code="visit-not-found")

    def list(self, actor: dict[str, Any], query: dict[str, Any]) -> tuple[list[dict], str | None]:
        role, org = (actor or {}).get("role"), (actor or {}).get("org")
        scope: dict[str, Any] = {}
        if role == "school":
            scope["school_id"] = org
        elif role == "venue":
            scope["venue_id"] = org
        if query.get("status"):
            scope["status"] = query["status"]
        return self.repo.list_visits(scope, query["limit"], query.get("cursor"))
