"""Tutor visits into schools (请进来): booked by the school, delivered, confirmed.

Each step belongs to one party: the school books and confirms, the tutor's venue marks it
delivered; either may cancel before confirmation, and a confirmed visit may be cancelled
by the school (funding reverses the subsidy). The confirmation carries what the funding
service needs to accrue the tutor's subsidy: tutor and level, school and district, day,
hours and students.

Who reads a visit: its school, its tutor's venue, admins, and finance and district staff
of the visit's district (the school's `district_id`: the district whose budget pays the
subsidy; district staff only read). Views show the tutor's venue by its current name and
district, read from booking's copy of the venue directory (kept from
`venues.venue_registered` / `venue_updated`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.booking.claims import history_entry, history_list
from services.booking.repository import BookingRepository
from services.booking.schools import DISTRICT_STAFF, district_of
from services.contracts.booking import TutorVisitRequest
from services.contracts.terms import SHANGHAI, term_of
from services.kit import clock, pages
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.kit.outbox import event


def _data(visit: dict[str, Any]) -> dict[str, Any]:
    keys = ("visit_id", "tutor_id", "tutor_name", "tutor_level", "venue_id", "school_id",
            "district", "district_id", "date", "term", "hours", "students", "subject")
    data = {k: visit.get(k) for k in keys}
    data["date"] = date.fromisoformat(visit["date"])
    return data


def visit_filter(actor: Actor, query: dict[str, Any]) -> dict[str, Any]:
    """The visits `actor` may list: a school its own, a venue its tutors', finance and
    district staff their district's, an admin all."""
    if actor.role == "school":
        flt: dict[str, Any] = {"school_id": actor.org_as("school")}
    elif actor.role == "venue":
        flt = {"venue_id": actor.org_as("venue")}
    elif district_of(actor):
        flt = {"district_id": district_of(actor)}
    elif actor.is_admin:
        flt = {}
    else:
        raise Forbidden(f"role {actor.role!r} may not read tutor visits", code="role-forbidden")
    if query.get("status"):
        flt["status"] = query["status"]
    return flt


def can_read_visit(actor: Actor, visit: dict[str, Any]) -> bool:
    if actor.role in DISTRICT_STAFF:
        return visit.get("district_id") == district_of(actor)
    return (actor.is_admin or (actor.role == "school" and actor.owns(visit["school_id"]))
            or (actor.role == "venue" and actor.owns(visit["venue_id"])))


class TutorVisits:
    def __init__(self, repo: BookingRepository, venues: Any) -> None:
        self.repo = repo
        self.venues = venues

    def book(self, actor: Actor, payload: dict[str, Any],
             request_key: str | None = None) -> dict[str, Any]:
        school_id = actor.org_as("school", "only school staff book tutor visits for their school")
        request = load(TutorVisitRequest, payload)
        visit_id, retried = self.repo.request_keys.new_id("tutor_visit", "vis", school_id,
                                                           request_key, payload)
        if retried and (existing := self.repo.find_visit(visit_id)) is not None:
            return existing  # a retry: the visit the first attempt booked
        school = self.repo.school(school_id)
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
        at = clock.stamp()
        key, entry = history_entry("booked", actor.name)
        visit = {"_id": visit_id, "visit_id": visit_id, "tutor_id": tutor["tutor_id"],
                 "tutor_name": tutor["name"], "tutor_level": tutor["level"],
                 "venue_id": tutor["venue_id"], "school_id": school["school_id"],
                 "district": school["district"],
                 "district_id": school.get("district_id"), "date": day.isoformat(),
                 "term": term_of(day), "hours": request["hours"],
                 "students": request["students"], "subject": request["subject"],
                 "status": "booked", "created_at": at, "updated_at": at,
                 "history": {key.split(".", 1)[1]: entry},
                 "list_key": pages.sort_key(at, visit_id)}
        try:
            self.repo.insert_visit(visit, event("booking.tutor_visit_booked", _data(visit)))
        except DuplicateKeyError:  # a concurrent retry of the same request booked it
            return self.repo.visit(visit_id)
        return visit

    def _owned(self, actor: Actor, visit_id: str, role: str) -> dict[str, Any]:
        visit = self.repo.visit(visit_id)
        owner = visit["school_id"] if role == "school" else visit["venue_id"]
        if actor.role != role:
            raise Forbidden(f"only the {role} may do this")
        if actor.org != owner:
            raise NotFound(f"tutor visit {visit_id} not found", code="visit-not-found")
        return visit

    def deliver(self, actor: Actor, visit_id: str) -> dict[str, Any]:
        visit = self._owned(actor, visit_id, "venue")
        today = clock.now().astimezone(SHANGHAI).date()
        if date.fromisoformat(visit["date"]) > today:
            raise Conflict("a visit can be marked delivered on or after its day",
                           code="visit-not-yet-due")
        return self._move(visit, ("booked",), "delivered", actor, "booking.tutor_visit_delivered")

    def confirm(self, actor: Actor, visit_id: str) -> dict[str, Any]:
        visit = self._owned(actor, visit_id, "school")
        return self._move(visit, ("delivered",), "confirmed", actor,
                          "booking.tutor_visit_confirmed")

    def cancel(self, actor: Actor, visit_id: str, reason: str) -> dict[str, Any]:
        role = actor.role
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
                                          actor.name, reason, (cancelled,))
        if done is None:
            raise Conflict("the visit changed meanwhile; try again", code="visit-changed")
        return done

    def _move(self, visit: dict[str, Any], from_: tuple[str, ...], to: str,
              actor: Actor, event_type: str) -> dict[str, Any]:
        if visit["status"] == to:
            return visit  # a repeat of the same step is harmless
        if visit["status"] not in from_:
            raise Conflict(f"a {visit['status']} visit cannot become {to}",
                           code="visit-wrong-state")
        done = self.repo.transition_visit(visit["_id"], from_, to, actor.name,
                                          events=(event(event_type, _data(visit)),))
        if done is None:
            raise Conflict("the visit changed meanwhile; try again", code="visit-changed")
        return done

    def get(self, actor: Actor, visit_id: str) -> dict[str, Any]:
        visit = self.repo.visit(visit_id)
        if not can_read_visit(actor, visit):
            raise NotFound(f"tutor visit {visit_id} not found", code="visit-not-found")
        return visit

    def list(self, actor: Actor, query: dict[str, Any]) -> tuple[list[dict], str | None]:
        return self.repo.list_visits(visit_filter(actor, query), query["limit"],
                                     query.get("cursor"))

    def views(self, visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Visits as the API shows them, each venue as the directory knows it now."""
        venues = self.repo.venues_by_id({v["venue_id"] for v in visits})
        return [{**v, "date": date.fromisoformat(v["date"]), "history": history_list(v),
                 "venue_name": venues.get(v["venue_id"], {}).get("name"),
                 "venue_district": venues.get(v["venue_id"], {}).get("district"),
                 "venue_district_id": venues.get(v["venue_id"], {}).get("district_id")}
                for v in visits]
