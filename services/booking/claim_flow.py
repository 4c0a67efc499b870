"""The claim flow: a school claims seats on one session, and may cancel.

A first-come claim is recorded `holding`, then held (`seating`). A window session's claim
waits `pending` for the allocation while its window is open, or joins the waitlist behind
an allocation under way. A retry with the same Idempotency-Key, or a copy sent at the same
moment, finds the first attempt's claim (`claim_keys`) and continues it instead of starting
another.

The checks run against a session kept for a while (`ports.SESSION_KEEP_S`); the hold asks
venues for the session version they ran against. If the session changed since (`stale`),
booking reads it again, checks again, refreshes what the claim copied, and asks again; if
the claim no longer fits, it is rejected and the caller told why (422), as if checked first.
"""

from __future__ import annotations

from typing import Any

from services.booking import claim_events
from services.booking.claim_keys import claim_id_for, request_print, same_request
from services.booking.claims import (
    ACTIVE,
    KNOWN_POSITION,
    OPEN_FOR_CANCEL,
    check_groups,
    check_session_open,
    new_claim,
    place_in_line,
    session_copy,
    wait_key,
)
from services.booking.ports import SESSION_KEEP_S, WINDOW_SESSION_KEEP_S, Lookups
from services.booking.repository import BookingRepository
from services.booking.seating import Seating
from services.booking.waitlist import Waitlist
from services.contracts.booking import CancelRequest, ClaimRequest
from services.kit import clock
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Conflict, NotFound, Unavailable, ValidationFailed

ONLY_SCHOOLS = "only school staff may claim seats for their school"
STALE_ATTEMPTS = 3  # holds refused as `stale` in a row before asking the caller to retry


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
        claim_id = claim_id_for(school_id, request_key)
        print_ = request_print(request, request_key)
        try:
            school = self.lookups.school(school_id)
            session = self._checked_session(request["session_id"], request["groups"])
        except (ValidationFailed, NotFound):
            # a retry whose first attempt went through answers that claim, whatever now
            earlier = self.repo.find_claim(claim_id) if print_ else None
            if earlier is None or earlier.get("reject_code") == "invalid":
                raise  # (a first attempt refused after its hold went stale: refused again)
            return self._repeat(earlier, print_)
        if session["claim_policy"] == "window":
            waiting = self._by_window(claim_id, school, session, request, actor.name, print_)
            if waiting is not None:
                return waiting
        doc = new_claim(claim_id, school, session, request["groups"], status="holding",
                        actor=actor.name, waitlist=request["waitlist"], fingerprint=print_)
        inserted = self.repo.insert_new_claim(doc)
        if inserted is not doc:  # a retry, or a copy of this request that got there first
            return self._repeat(inserted, print_)
        return self._hold(doc)

    def _checked_session(self, session_id: str, groups: list[dict[str, Any]]
                         ) -> dict[str, Any]:
        """The session (a kept copy), checked open and fitting these classes. A window
        session is read fresher: its claim waits without a hold to prove the checks."""
        session = self.lookups.session(session_id, max_age=SESSION_KEEP_S)
        if session["claim_policy"] == "window":
            session = self.lookups.session(session_id, max_age=WINDOW_SESSION_KEEP_S)
        check_session_open(session, clock.now())
        check_groups(session, groups)
        return session

    def _repeat(self, earlier: dict[str, Any], print_: str | None) -> dict[str, Any]:
        """The same request again: continue its claim (the same key with another request is
        refused). A claim still `holding` is held now: holds are keyed by claim id, so this
        and the first attempt's hold count once, and both answer the final claim."""
        same_request(earlier, print_)
        if earlier["status"] != "holding" or earlier.get("batch_id"):
            return earlier
        return self._hold(earlier)

    def _hold(self, claim: dict[str, Any]) -> dict[str, Any]:
        """Hold a `holding` claim's seats, proving its checks against the current session."""
        for _ in range(STALE_ATTEMPTS):
            done, answer = self.seating.hold(claim, claim.get("session_version"))
            if answer["reason"] != "stale":
                return done
            claim = self._checked_again(claim)
            if claim["status"] != "holding":
                return claim
        raise Unavailable(f"session {claim['session_id']} keeps changing; try again",
                          code="busy")

    def _checked_again(self, claim: dict[str, Any]) -> dict[str, Any]:
        """The session changed since the claim was checked: read it, check again, copy it
        again. A claim that no longer fits is rejected and the caller told why."""
        sid = claim["session_id"]
        self.lookups.forget_session(sid)
        try:
            session = self.lookups.session(sid)
            check_session_open(session, clock.now())
            check_groups(session, claim["groups"])
        except ValidationFailed as refused:
            self.repo.transition(claim["_id"], ("holding",), "rejected", "system",
                                 refused.detail, set_={"reject_code": "invalid"},
                                 unset=("wait_key",))
            raise
        fresh = self.repo.update_claim(claim["_id"], set_=session_copy(session),
                                       only_if={"status": "holding"})
        return fresh or self.repo.claim(claim["_id"])

    def _by_window(self, claim_id: str, school: dict[str, Any], session: dict[str, Any],
                   request: dict[str, Any], who: str,
                   print_: str | None) -> dict[str, Any] | None:
        """Pending while the window is open (and not yet allocated), waitlisted behind an
        allocation under way; None once the allocation is over: then it is first come."""
        sid = session["session_id"]
        alloc = self.repo.allocation(sid)
        state = alloc["state"] if alloc else None
        window_open = clock.now() < clock.parse(session["window_closes_at"])
        if window_open and state in (None, "open"):
            self.repo.expect_allocation(sid, session["window_closes_at"])
            doc = new_claim(claim_id, school, session, request["groups"], status="pending",
                            actor=who, waitlist=request["waitlist"], fingerprint=print_)
            inserted = self.repo.insert_new_claim(doc)
            return doc if inserted is doc else self._repeat(inserted, print_)
        if state in ("open", "placing"):
            doc = new_claim(claim_id, school, session, request["groups"], status="waitlisted",
                            actor=who, waitlist=True, fingerprint=print_,
                            reason="the claim window has closed; waiting for seats")
            doc["wait_key"] = wait_key()
            position = place_in_line(self.repo.line(sid), doc)
            inserted = self.repo.insert_new_claim(doc, [claim_events.waitlisted(doc, position)])
            if inserted is doc:
                return {**doc, KNOWN_POSITION: position}
            return self._repeat(inserted, print_)
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
