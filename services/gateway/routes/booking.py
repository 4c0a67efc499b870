"""Claims, batch claims, attendance and tutor visits."""

from __future__ import annotations

from typing import Any

from services.contracts.booking import (
    AllocationView,
    AttendanceRequest,
    BatchRequest,
    BatchView,
    CancelRequest,
    ClaimQuery,
    ClaimRequest,
    ClaimView,
    TutorVisitQuery,
    TutorVisitRequest,
    TutorVisitView,
)
from services.gateway.routing import Call, route

ANY = ("admin", "venue", "school", "finance", "district")  # district staff: read only


@route("POST", "/v1/claims", roles=("school",), tag="claims", body=ClaimRequest,
       response=ClaimView, status=201, creates=True, binds_key=True, service_loads=True)
def create_claim(call: Call) -> Any:
    """Claim seats for one or more classes: confirmed, pending (window), waitlisted or rejected."""
    claim = call.rpc.booking.create_claim(call.actor, call.body, call.request_key)
    call.headers["Location"] = f"/v1/claims/{claim['claim_id']}"
    return claim


@route("GET", "/v1/claims", roles=("admin", "venue", "school"), tag="claims", query=ClaimQuery,
       response=ClaimView, many=True)
def list_claims(call: Call) -> Any:
    """Claims: a school sees its own, a venue those on its sessions."""
    return call.rpc.booking.list_claims(call.actor, call.request.args.to_dict())


@route("GET", "/v1/claims/<claim_id>", roles=("admin", "venue", "school"), tag="claims",
       response=ClaimView)
def get_claim(call: Call) -> Any:
    """One claim with its status history."""
    return call.rpc.booking.get_claim(call.actor, call.path["claim_id"])


@route("POST", "/v1/claims/<claim_id>/cancel", roles=("school",), tag="claims",
       body=CancelRequest, response=ClaimView)
def cancel_claim(call: Call) -> Any:
    """Cancel a claim (until the venue's cut-off); its seats go to the waitlist."""
    return call.rpc.booking.cancel_claim(call.actor, call.path["claim_id"], call.body or {})


@route("POST", "/v1/claim-batches", roles=("school",), tag="claims", body=BatchRequest,
       response=BatchView, status=201, creates=True)
def create_batch(call: Call) -> Any:
    """Split classes across sessions in preference order (分期分批)."""
    batch = call.rpc.booking.create_batch(call.actor, call.body, call.request_key)
    call.headers["Location"] = f"/v1/claim-batches/{batch['batch_id']}"
    return batch


@route("GET", "/v1/claim-batches/<batch_id>", roles=("admin", "school"), tag="claims",
       response=BatchView)
def get_batch(call: Call) -> Any:
    """One batch with the assignment of each class."""
    return call.rpc.booking.get_batch(call.actor, call.path["batch_id"])


@route("POST", "/v1/sessions/<session_id>/attendance", roles=("venue", "school"),
       tag="claims", body=AttendanceRequest)
def record_attendance(call: Call) -> Any:
    """Record who came, per claim: a head count, or the pupils of each class (roster ids).
    The session's venue, or the school for its own claims (the teacher on the trip)."""
    return call.rpc.booking.record_attendance(call.actor, call.path["session_id"], call.body)


@route("GET", "/v1/sessions/<session_id>/allocation", roles=("admin", "venue", "school"),
       tag="claims", response=AllocationView)
def get_allocation(call: Call) -> Any:
    """A window session's allocation: the seed, the order rules (priority schools, fewer
    confirmed visits, fewer no-shows, lottery) and each claim's rank, outcome and reason.
    The session's venue and admins see every claim; a school only its own. Before the
    window closes, `state` is `open` and there are no items yet."""
    return call.rpc.booking.get_allocation(call.actor, call.path["session_id"])


@route("POST", "/v1/tutor-visits", roles=("school",), tag="tutor visits",
       body=TutorVisitRequest, response=TutorVisitView, status=201, creates=True,
       binds_key=True)
def book_tutor_visit(call: Call) -> Any:
    """Book a registered tutor into the school (请进来)."""
    visit = call.rpc.booking.book_tutor_visit(call.actor, call.body, call.request_key)
    call.headers["Location"] = f"/v1/tutor-visits/{visit['visit_id']}"
    return visit


@route("GET", "/v1/tutor-visits", roles=ANY, tag="tutor visits", query=TutorVisitQuery,
       response=TutorVisitView, many=True)
def list_tutor_visits(call: Call) -> Any:
    """Tutor visits: a school sees its own, a venue its tutors', finance and district staff
    their district's."""
    return call.rpc.booking.list_tutor_visits(call.actor, call.request.args.to_dict())


@route("GET", "/v1/tutor-visits/<visit_id>", roles=ANY, tag="tutor visits",
       response=TutorVisitView)
def get_tutor_visit(call: Call) -> Any:
    """One tutor visit with its history."""
    return call.rpc.booking.get_tutor_visit(call.actor, call.path["visit_id"])


@route("POST", "/v1/tutor-visits/<visit_id>/deliver", roles=("venue",), tag="tutor visits",
       response=TutorVisitView)
def deliver_tutor_visit(call: Call) -> Any:
    """The tutor's venue: the visit took place."""
    return call.rpc.booking.deliver_tutor_visit(call.actor, call.path["visit_id"])


@route("POST", "/v1/tutor-visits/<visit_id>/confirm", roles=("school",), tag="tutor visits",
       response=TutorVisitView)
def confirm_tutor_visit(call: Call) -> Any:
    """The school: the delivered visit is confirmed; the subsidy becomes due."""
    return call.rpc.booking.confirm_tutor_visit(call.actor, call.path["visit_id"])


@route("POST", "/v1/tutor-visits/<visit_id>/cancel", roles=("school", "venue"),
       tag="tutor visits", body=CancelRequest, response=TutorVisitView)
def cancel_tutor_visit(call: Call) -> Any:
    """Cancel a tutor visit (the school, or the venue before delivery)."""
    reason = (call.body or {}).get("reason") or "cancelled"
    return call.rpc.booking.cancel_tutor_visit(call.actor, call.path["visit_id"], reason)
