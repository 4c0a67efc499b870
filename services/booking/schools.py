"""Schools: registered by an admin (once per Idempotency-Key), read by whom they concern.

A school belongs to one district by `district_id` (identity's organisation, known here
from `identity.district_registered`); its views also carry the district's name. A
school's own staff and admins read it; finance and district staff read the schools of
their district (their org is the district id). During the move from names to ids a school
may be registered by district name alone (kit.migrations, docs/districts.md).
"""

from __future__ import annotations

from typing import Any

from services.booking.repository import BookingRepository
from services.contracts.booking import SchoolRegistration
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Forbidden, NotFound

DISTRICT_STAFF = ("finance", "district")


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
    district_id, name = repo.districts.resolve(data)
    return repo.register_school({**data, "district_id": district_id, "district": name},
                                school_id)


def district_of(actor: Actor) -> str | None:
    """The district id a finance or district actor acts for (Forbidden without one);
    None for other roles."""
    if actor.role in DISTRICT_STAFF:
        return actor.org_as(actor.role, f"{actor.role} staff act for their district")
    return None


def readable_school(actor: Actor, school: dict[str, Any]) -> dict[str, Any]:
    """`school` if `actor` may read it; another school's staff are refused, others not told."""
    if actor.is_admin:
        return school
    if actor.role == "school":
        if not actor.owns(school["school_id"]):
            raise Forbidden("a school may only read its own record", code="school-forbidden")
        return school
    district = district_of(actor)
    if district and school.get("district_id") == district:
        return school
    actor.require(*DISTRICT_STAFF, detail=f"role {actor.role!r} may not read schools")
    raise NotFound(f"school {school['school_id']} not found", code="school-not-found")


def list_schools(repo: BookingRepository, actor: Actor, query: dict[str, Any]
                 ) -> tuple[list[dict[str, Any]], str | None]:
    """Schools of the caller's district (an admin: all, or one district's)."""
    if actor.is_admin:
        scope = {"district_id": query["district_id"]} if query.get("district_id") else {}
    else:
        district = district_of(actor)
        if district is None:
            raise Forbidden(f"role {actor.role!r} may not list schools", code="role-forbidden")
        scope = {"district_id": district}
    return repo.list_schools(scope, query["limit"], query.get("cursor"))
