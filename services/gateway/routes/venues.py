"""Venues routes: a venue's own record, tutors and sessions, and the catalogue (课程菜单).

Ownership is checked by the venues service with the caller passed as a signed `actor`;
creating routes pass the `Idempotency-Key` on as `request_key`, so the service never creates
twice for a retried request.
"""

from __future__ import annotations

from typing import Any

from services.contracts.venues import (
    CatalogueQuery,
    SessionCancellation,
    SessionChange,
    SessionDraft,
    SessionView,
    TutorChange,
    TutorQuery,
    TutorRegistration,
    TutorView,
    Venue,
    VenueChange,
    VenueQuery,
)
from services.gateway.routing import Call, route

ANYONE = ("admin", "venue", "school", "finance", "district")
VENUE_STAFF = ("venue", "admin")


@route("GET", "/v1/venues", roles=ANYONE, tag="venues", query=VenueQuery, response=Venue,
       many=True)
def list_venues(call: Call) -> Any:
    """Venues, paged (`district_id=`, `kind=` narrow it): schools choosing whose tutors to
    invite, admin and district staff."""
    return call.rpc.venues.list_venues(call.request.args.to_dict(), actor=call.actor)


@route("PATCH", "/v1/venues/<venue_id>", roles=VENUE_STAFF, tag="venues", body=VenueChange,
       response=Venue)
def update_venue(call: Call) -> Any:
    """Edit a venue (its own staff): name, kind, address, location, contact, accessibility."""
    return call.rpc.venues.update_venue(call.path["venue_id"], call.body, actor=call.actor)


@route("POST", "/v1/venues/<venue_id>/sessions", roles=VENUE_STAFF, tag="sessions",
       body=SessionDraft, response=SessionView, status=201, creates=True)
def publish_session(call: Call) -> Any:
    """Publish a session, or a series with `repeat` (answers `{series_id, sessions}`)."""
    published = call.rpc.venues.publish_session(call.path["venue_id"], call.body,
                                                 actor=call.actor, request_key=call.request_key)
    if "session_id" in published:
        call.headers["Location"] = f"/v1/sessions/{published['session_id']}"
    return published


@route("GET", "/v1/sessions", roles=ANYONE, tag="sessions", query=CatalogueQuery,
       response=SessionView, many=True)
def catalogue(call: Call) -> Any:
    """The catalogue: filter by time, grade, category, audience, price, venue, district,
    status; `near=lat,lon` (with `radius_km`) sorts by distance and adds `distance_km`."""
    return call.rpc.venues.catalogue(call.request.args.to_dict())


@route("GET", "/v1/sessions/<session_id>", roles=ANYONE, tag="sessions", response=SessionView)
def get_session(call: Call) -> Any:
    """One session with `capacity`, `seats_left` and `status`."""
    return call.rpc.venues.get_session(call.path["session_id"])


@route("PATCH", "/v1/sessions/<session_id>", roles=VENUE_STAFF, tag="sessions",
       body=SessionChange, response=SessionView)
def update_session(call: Call) -> Any:
    """Reschedule, resize (never below the seats held) or edit a session (owning venue)."""
    return call.rpc.venues.update_session(call.path["session_id"], call.body, actor=call.actor)


@route("POST", "/v1/sessions/<session_id>/cancel", roles=VENUE_STAFF, tag="sessions",
       body=SessionCancellation, response=SessionView)
def cancel_session(call: Call) -> Any:
    """Cancel a session (owning venue); every claim on it is cancelled and parents told."""
    return call.rpc.venues.cancel_session(call.path["session_id"], call.body, actor=call.actor)


@route("POST", "/v1/venues/<venue_id>/tutors", roles=VENUE_STAFF, tag="tutors",
       body=TutorRegistration, response=TutorView, status=201, creates=True)
def register_tutor(call: Call) -> Any:
    """Register a science tutor (校外科技辅导员) with the vetting record (own venue)."""
    tutor = call.rpc.venues.register_tutor(call.path["venue_id"], call.body, actor=call.actor,
                                           request_key=call.request_key)
    call.headers["Location"] = f"/v1/venues/{tutor['venue_id']}/tutors/{tutor['tutor_id']}"
    return tutor


@route("GET", "/v1/venues/<venue_id>/tutors", roles=("venue", "admin", "school"),
       tag="tutors", query=TutorQuery, response=TutorView, many=True)
def list_tutors(call: Call) -> Any:
    """A venue's tutors: its own staff, and schools choosing whom to invite (请进来)."""
    return call.rpc.venues.list_tutors(call.path["venue_id"], actor=call.actor,
                                       limit=call.query["limit"],
                                       cursor=call.query.get("cursor"))


@route("PATCH", "/v1/venues/<venue_id>/tutors/<tutor_id>", roles=VENUE_STAFF, tag="tutors",
       body=TutorChange, response=TutorView)
def update_tutor(call: Call) -> Any:
    """Change a tutor's level or subjects, or renew the vetting (own venue)."""
    return call.rpc.venues.update_tutor(call.path["venue_id"], call.path["tutor_id"], call.body,
                                        actor=call.actor)
