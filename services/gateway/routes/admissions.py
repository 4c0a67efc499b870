"""Admissions routes: families book 亲子 sessions without an account, school staff book
teacher-training seats, venues check tickets in and download the day's takings.

Family routes are public (no token): a guardian proves a mobile with a one-time code,
books with the verification pass, and manages the booking through its signed manage
token (the link in the ticket SMS). They count in the throttle's `family` group.
"""

from __future__ import annotations

import base64
from typing import Any

from werkzeug.wrappers import Response

from services.contracts.admissions import (
    BookingView,
    CheckInRequest,
    CodeCheck,
    CodeRequest,
    FamilyBookingRequest,
    RegisterQuery,
    TakingsQuery,
    TrainingBookingRequest,
)
from services.contracts.venues import CatalogueQuery, SessionView
from services.gateway.downloads import attachment
from services.gateway.routing import Call, route

FAMILY = "family bookings"
TRAINING = "teacher training"
DOOR = "check-in"
VENUE_STAFF = ("venue", "admin")


@route("GET", "/v1/family/sessions", roles=None, tag=FAMILY, query=CatalogueQuery,
       response=SessionView, many=True)
def family_sessions(call: Call) -> Any:
    """Family (亲子) sessions, public: by date, category, `free`, `near=lat,lon`."""
    return call.rpc.venues.catalogue({**call.request.args.to_dict(), "audience": "family"})


@route("GET", "/v1/family/sessions/<session_id>", roles=None, tag=FAMILY, response=SessionView)
def family_session(call: Call) -> Any:
    """One family session: prices per person category, limits, seats left."""
    return call.rpc.admissions.family_session(call.path["session_id"])


@route("POST", "/v1/family/codes", roles=None, tag=FAMILY, body=CodeRequest, status=202)
def send_code(call: Call) -> Any:
    """Send a one-time code by SMS to a mainland mobile (limited: one a minute, a few an
    hour; a number locked after wrong codes waits)."""
    return call.rpc.admissions.send_code(call.body)


@route("POST", "/v1/family/verifications", roles=None, tag=FAMILY, body=CodeCheck)
def verify_code(call: Call) -> Any:
    """The code back: a verification pass to book with (five wrong codes lock the number)."""
    return call.rpc.admissions.verify_code(call.body)


@route("POST", "/v1/family/sessions/<session_id>/bookings", roles=None, tag=FAMILY,
       body=FamilyBookingRequest, response=BookingView, status=201, creates=True)
def book_family(call: Call) -> Any:
    """Hold seats for adults and children (or join the waitlist when full); confirm with
    the answer's `manage_token` before `hold_expires_at`."""
    booking = call.rpc.admissions.book_family(call.path["session_id"], call.body,
                                              request_key=call.request_key)
    call.headers["Location"] = f"/v1/family/bookings/{booking['manage_token']}"
    return booking


@route("GET", "/v1/family/bookings/<token>", roles=None, tag=FAMILY, response=BookingView)
def family_booking(call: Call) -> Any:
    """A booking through its manage link: status, ticket code, waitlist place."""
    return call.rpc.admissions.family_booking(call.path["token"])


@route("POST", "/v1/family/bookings/<token>/confirm", roles=None, tag=FAMILY,
       response=BookingView)
def confirm_family(call: Call) -> Any:
    """Confirm held seats: the booking gets its e-ticket (sent by SMS)."""
    return call.rpc.admissions.confirm_family(call.path["token"])


@route("POST", "/v1/family/bookings/<token>/cancel", roles=None, tag=FAMILY,
       response=BookingView)
def cancel_family(call: Call) -> Any:
    """Cancel until the session's cut-off; the seats go to the waitlist in order."""
    return call.rpc.admissions.cancel_family(call.path["token"])


@route("GET", "/v1/family/bookings/<token>/ticket.svg", roles=None, tag=FAMILY,
       raw_response=True)
def ticket_svg(call: Call) -> Any:
    """The e-ticket's QR code (SVG) of a confirmed booking."""
    image = call.rpc.admissions.ticket_image(call.path["token"], "svg")
    return Response(image["text"], status=200, content_type=image["content_type"],
                    headers={"Cache-Control": "private, max-age=300"})


@route("GET", "/v1/family/bookings/<token>/ticket.png", roles=None, tag=FAMILY,
       raw_response=True)
def ticket_png(call: Call) -> Any:
    """The e-ticket's QR code (PNG) of a confirmed booking."""
    image = call.rpc.admissions.ticket_image(call.path["token"], "png")
    return Response(base64.b64decode(image["base64"]), status=200,
                    content_type=image["content_type"],
                    headers={"Cache-Control": "private, max-age=300"})


# -- teachers --------------------------------------------------------------------------------
@route("POST", "/v1/training/sessions/<session_id>/bookings", roles=("school",),
       tag=TRAINING, body=TrainingBookingRequest, status=201, creates=True)
def book_training(call: Call) -> Any:
    """Seats on a teacher-training session for named staff of the caller's school."""
    return call.rpc.admissions.book_training(call.actor, call.path["session_id"], call.body,
                                             request_key=call.request_key)


@route("GET", "/v1/training/bookings", roles=("school",), tag=TRAINING, query=RegisterQuery)
def school_training(call: Call) -> Any:
    """The caller's school's training seats."""
    return call.rpc.admissions.school_training(call.actor, call.request.args.to_dict())


@route("POST", "/v1/training/bookings/<booking_id>/cancel", roles=("school",), tag=TRAINING,
       response=BookingView)
def cancel_training(call: Call) -> Any:
    """Give back a training seat (until the cut-off); the waitlist moves."""
    return call.rpc.admissions.cancel_training(call.actor, call.path["booking_id"])


# -- the venue's door ------------------------------------------------------------------------
@route("GET", "/v1/sessions/<session_id>/register", roles=VENUE_STAFF, tag=DOOR,
       query=RegisterQuery)
def session_register(call: Call) -> Any:
    """Who is booked on a family or training session: attendees and their schools,
    households with masked mobiles."""
    return call.rpc.admissions.session_register(call.actor, call.path["session_id"],
                                                call.request.args.to_dict())


@route("POST", "/v1/venues/<venue_id>/check-ins", roles=VENUE_STAFF, tag=DOOR,
       body=CheckInRequest)
def check_in(call: Call) -> Any:
    """Check a ticket in by its scanned or typed code, recording the fee paid at the
    venue; a repeat answers `repeated` and when it was first checked in."""
    return call.rpc.admissions.check_in(call.actor, call.path["venue_id"], call.body)


@route("GET", "/v1/venues/<venue_id>/takings", roles=VENUE_STAFF, tag=DOOR, query=TakingsQuery,
       raw_response=True)
def takings(call: Call) -> Any:
    """One day's check-ins and fees paid at the venue: `format=json|csv|xlsx`."""
    answer = call.rpc.admissions.takings(call.actor, call.path["venue_id"],
                                         call.request.args.to_dict())
    if "filename" not in answer:
        return answer
    body = base64.b64decode(answer["base64"]) if "base64" in answer else answer["text"].encode()
    name = answer["filename"]
    return Response(body, status=200, content_type=answer["content_type"], headers={
        "Content-Disposition": attachment(name)})
