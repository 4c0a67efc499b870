"""Schools: registered by an admin (once per Idempotency-Key), read by whom they concern.

A school's own staff and admins read it; finance staff read the schools of their
district (a finance actor's org is its district; schools carry their district by name
until the district-id migration).
"""

from __future__ import annotations

from typing import Any

from services.booking.repository import BookingRepository
from services.contracts.booking import SchoolRegistration
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Forbidden, NotFound


def register_school(repo: BookingRepository, actor: Actor, payload: dict[str, Any],
                    request_key: str | None = None) -> dict[str, Any]:
    """Admins only; a retried key answers the first school, per admin (as the gateway scopes)."""
    if not actor.is_admin:
        raise Forbidden("only an admin registers schools", code="role-forbidden")
    data = load(SchoolRegistration, payload)
    school_id, retried = repo.request_keys.new_id("school", "sch", actor.name, request_key,
                                                  payload)
    if retried and (existing := repo.find_school(school_id)) is not None:
        return existing
    return repo.register_school(data, school_id)


def readable_school(actor: Actor, school: dict[str, Any]) -> dict[str, Any]:
    """`school` if `actor` may read it; another school's staff are refused, others not told."""
    if actor.is_admin:
        return school
    if actor.role == "school":
        if not actor.owns(school["school_id"]):
            raise Forbidden("a school may only read its own record", code="school-forbidden")
        return school
    if actor.role == "finance" and school.get("district") == actor.org_as("finance"):
        return school
    actor.require("finance", detail=f"role {actor.role!r} may not read schools")
    raise NotFound(f"school {school['school_id']} not found", code="school-not-found")
