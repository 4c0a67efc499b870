"""Registering schools and venues (admin): the services check the signed actor again, and
bind the `Idempotency-Key` (`request_key`) so a retry never registers twice. Each belongs
to a district by `district_id` (docs/districts.md)."""

from __future__ import annotations

from typing import Any

from services.contracts.booking import School, SchoolQuery, SchoolRegistration
from services.contracts.venues import Venue, VenueRegistration
from services.gateway.routing import Call, route


@route("POST", "/v1/venues", roles=("admin",), tag="venues", body=VenueRegistration,
       response=Venue, status=201, creates=True)
def register_venue(call: Call) -> Any:
    """Register a venue."""
    venue = call.rpc.venues.register_venue(call.body, actor=call.actor,
                                           request_key=call.request_key)
    call.headers["Location"] = f"/v1/venues/{venue['venue_id']}"
    return venue


@route("POST", "/v1/schools", roles=("admin",), tag="schools", body=SchoolRegistration,
       response=School, status=201, creates=True)
def register_school(call: Call) -> Any:
    """Register a school."""
    school = call.rpc.booking.register_school(call.actor, call.body,
                                               request_key=call.request_key)
    call.headers["Location"] = f"/v1/schools/{school['school_id']}"
    return school


@route("GET", "/v1/venues/<venue_id>", roles=("admin", "venue", "school", "finance", "district"),
       tag="venues", response=Venue)
def get_venue(call: Call) -> Any:
    """One venue."""
    return call.rpc.venues.get_venue(call.path["venue_id"])


@route("GET", "/v1/schools", roles=("admin", "district", "finance"), tag="schools",
       query=SchoolQuery, response=School, many=True)
def list_schools(call: Call) -> Any:
    """The schools of the caller's district (admins: all, or `district_id`'s)."""
    return call.rpc.booking.list_schools(call.actor, call.request.args.to_dict())


@route("GET", "/v1/schools/<school_id>", roles=("admin", "school", "finance", "district"),
       tag="schools", response=School)
def get_school(call: Call) -> Any:
    """One school (its own staff, admins, and finance and district staff of its district):
    booking decides."""
    return call.rpc.booking.get_school(call.actor, call.path["school_id"])
