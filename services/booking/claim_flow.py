"""The claim flow: a school claims seats on one session, and may cancel.

A first-come claim is recorded `holding`, then held (`seating`). A window session's claim
waits `pending` for the allocation while its window is open, or joins the waitlist behind
an allocation under way. A retry with the same Idempotency-Key continues the first
attempt's claim instead of starting another.
"""

from __future__ import annotations

from typing import Any

from services.booking import claim_events
from services.booking.claims import (
    ACTIVE,
    OPEN_FOR_CANCEL,
    check_groups,
    check_session_open,
    new_claim,
    place_in_line,
    wait_key,
)
from services.booking.ports import Lookups
from services.booking.repository import BookingRepository
from services.booking.seating import Seating
from services.booking.waitlist import Waitlist
from services.contracts.booking import CancelRequest, ClaimRequest
from services.kit import clock
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Conflict, NotFound

ONLY_SCHOOLS = "only school staff may claim seats for their school"


class ClaimFlow:
    def __init__(self, repo: BookingRepository, lookups: Lookups, seating: Seating,
                 waitlist: Waitlist) -> None:
        self.repo = repo
        self.lookups = lookups
        self.seating = seating
        self.waitlist = waitlist

    def create(self, actor: Actor, payload: dict[str, Any],
               request_key: str | None = None) -> dict[str, Any]:
        school_id = actor.org_as("school", ONLY_SCHOOLS)
        request = load(ClaimRequest, payload)
        claim_id, retried = self.repo.request_keys.new_id("claim", "clm", school_id,
                                                           request_key, payload)
        if retried and (existing := self.repo.find_claim(claim_id)) is not None:
            return self.seating.resume(existing)  # a retry: continue the first attempt
        school = self.lookups.school(school_id)
        session = self.lookups.session(request["session_id"], fresh=False)
        check_session_open(session, clock.now())
        check_groups(session, request["groups"])
        if session["claim_policy"] == "window":
            waiting = self._by_window(claim_id, school, session, request, actor.name)
            if waiting is not None:
                return waiting
        doc = new_claim(claim_id, school, session, request["groups"], status="holding",
                        actor=actor.name, waitlist=request["waitlist"])
        inserted = self.repo.insert_new_claim(doc)
        if inserted is not doc:
            return inserted  # a concurrent repeat of the same request got there first
        return self.seating.hold(doc)[0]

    def _by_window(self, claim_id: str, school: dict[str, Any], session: dict[str, Any],
                   request: dict[str, Any], who: str) -> dict[str, Any] | None:
        """Pending while the window is open (and not yet allocated), waitlisted behind an
        allocation under way; None once the allocation is over: then it is first come."""
        sid = session["session_id"]
        alloc = self.repo.allocation(sid)
        state = alloc["state"] if alloc else None
        window_open = clock.now() < clock.parse(session["window_closes_at"])
        if window_open and state in (None, "open"):
            self.repo.expect_allocation(sid, session["window_closes_at"])
            return self.repo.insert_new_claim(new_claim(
                claim_id, school, session, request["groups"], status="pending", actor=who,
                waitlist=request["waitlist"]))
        if state in ("open", "placing"):
            doc = new_claim(claim_id, school, session, request["groups"], status="waitlisted",
                            actor=who, waitlist=True,
                            reason="the claim window has closed; waiting for seats")
            doc["wait_key"] = wait_key()
            position = place_in_line(self.repo.waitlist(sid), doc)
            return self.repo.insert_new_claim(doc, [claim_events.waitlisted(doc, position)])
        return None

    def cancel(self, actor: Actor, claim_id: str,
               payload: dict[str, Any] | None = None) -> dict[str, Any]:
        request = load(CancelRequest, payload or {})
        school_id = actor.org_as("school", "only the school's staff cancel its claims")
        claim = self.repo.claim(claim_id)
        if claim["school_id"] != school_id:
            raise NotFound(f"claim {claim_id} not found", code="claim-not-found")
        if claim["status"] not in OPEN_FOR_CANCEL:
            raise Conflict(f"a {claim['status']} claim cannot be cancelled",
                           code="claim-not-cancellable")
        starts = clock.parse(claim["trip"]["starts_at"])
        cutoff_h = claim.get("cancel_cutoff_hours", 24)
        left_s = (starts - clock.now()).total_seconds()
        if claim["status"] == "confirmed" and left_s < cutoff_h * 3600:
            raise Conflict(f"cancellation closed {cutoff_h} hours before the start; "
                           "contact the venue", code="cancel-cutoff-passed")
        return self.end(claim, "school", request["reason"], actor.name)

    def end(self, claim: dict[str, Any], by: str, reason: str, who: str,
            promote: bool = True) -> dict[str, Any]:
        """Cancel a claim, give its seats back and (unless told not to) offer them on."""
        had_seats = claim["status"] in ("confirmed", "holding")
        done = self.repo.transition(
            claim["_id"], (claim["status"],), "cancelled", who, reason,
            set_={"release_pending": True, "cancelled_by": by} if had_seats
            else {"cancelled_by": by},
            unset=("wait_key",), events=(claim_events.cancelled(claim, by, reason),))
        if done is None:  # it changed under us: answer with what it is now
            current = self.repo.claim(claim["_id"])
            if current["status"] in ACTIVE and current["status"] != claim["status"]:
                return self.end(current, by, reason, who, promote)
            return current
        if had_seats:
            self.seating.release(done)
            if promote:
                self.waitlist.promote(claim["session_id"])
        return self.repo.claim(claim["_id"])

    def session_cancelled(self, session_id: str, reason: str) -> int:
        """The venue cancelled the session: every active claim on it ends."""
        claims = self.repo.claims_on_session(session_id, ACTIVE)
        for claim in claims:
            self.end(claim, "venue", reason, "venue", promote=False)
        alloc = self.repo.allocation(session_id)
        if alloc is not None and alloc["state"] in ("open", "placing"):
            self.repo.finish_allocation(session_id, "cancelled")
        return len(claims)
