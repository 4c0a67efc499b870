"""Registering schools and venues (admin)."""

from __future__ import annotations

from typing import Any

from services.contracts.booking import School, SchoolRegistration
from services.contracts.venues import Venue, VenueRegistration
from services.gateway.routing import Call, route


@route("POST", "/v1/venues", roles=("admin",), tag="venues", body=VenueRegistration,
       response=Venue, status=201, creates=True)
def register_venue(call: Call) -> Any:
    """Register a venue."""
    venue = call.rpc.venues.register_venue(call.body)
    call.headers["Location"] = f"/v1/venues/{venue['venue_id']}"
    return venue


@route("POST", "/v1/schools", roles=("admin",), tag="schools", body=SchoolRegistration,
       response=School, status=201, creates=True)
def register_school(call: Call) -> Any:
    """Register a school."""
    school = call.rpc.booking.register_school(call.body)
    call.headers["Location"] = f"/v1/schools/{school['school_id']}"
    return school


@route("GET", "/v1/venues/<venue_id>", roles=("admin", "venue", "school", "finance"),
       tag="venues", response=Venue)
def get_venue(call: Call) -> Any:
    """One venue."""
    return call.rpc.venues.get_venue(call.path["venue_id"])


@route("GET", "/v1/schools/<school_id>", roles=("admin", "school", "finance"), tag="schools",
       response=School)
def get_school(call: Call) -> Any:
    """One school (its own staff, admins and finance)."""
    if call.principal.role == "school" and call.principal.org != call.path["school_id"]:
        from services.gateway.problems import forbidden

        raise forbidden("a school may only read its own record")
    return call.rpc.booking.get_school(call.path["school_id"])
