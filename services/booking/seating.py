"""Seats for one claim: ask venues for the hold, record its answer, give seats back.

Seats are only ever held for a claim already recorded as `holding`, so a crash between
the hold and its answer leaves a claim that `resume` finishes: it asks venues for the same
hold again (holds are keyed by claim id, so the repeat changes nothing) and records the
answer. A failed release leaves `release_pending` for the recovery sweep. That is how no
seat is orphaned.
"""

from __future__ import annotations

import logging
from typing import Any

from services.booking import claim_events
from services.booking.claims import place_in_line, wait_key
from services.booking.ports import Venues
from services.booking.repository import BookingRepository

log = logging.getLogger("kepu.booking")

REFUSALS = {"full": "no seats left (no waitlist asked for)",
            "over_school_limit": "over the session's limit of seats per school",
            "closed": "the session has started", "cancelled": "the session was cancelled",
            "not_found": "the session no longer exists"}


class Seating:
    def __init__(self, repo: BookingRepository, venues: Venues) -> None:
        self.repo = repo
        self.venues = venues

    def hold(self, claim: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Hold a `holding` claim's seats and record the answer: (claim now, venues' answer)."""
        answer = self.venues.hold(claim["session_id"], claim["_id"], claim["school_id"],
                                  claim["seats"])
        return self.settle(claim, answer), answer

    def resume(self, claim: dict[str, Any]) -> dict[str, Any]:
        """A claim caught mid-way (`holding`) gets its answer now: ask for the same hold again."""
        if claim["status"] != "holding" or claim.get("batch_id"):
            return claim
        return self.hold(claim)[0]

    def settle(self, claim: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """Complete a `holding` claim from the venues service's answer to its hold."""
        if answer["ok"]:
            done = self.repo.transition(claim["_id"], ("holding",), "confirmed", "system",
                                        events=(claim_events.confirmed(claim),),
                                        unset=("wait_key",))
            return done or self.repo.claim(claim["_id"])
        reason = answer["reason"]
        if reason == "full" and claim.get("waitlist", True):
            return self.to_waitlist(claim, ("holding",), "no seats left; waitlisted",
                                    claim.get("wait_key") or wait_key())
        done = self.repo.transition(claim["_id"], ("holding",), "rejected", "system",
                                    REFUSALS.get(reason, reason),
                                    set_={"reject_code": reason}, unset=("wait_key",))
        return done or self.repo.claim(claim["_id"])

    def to_waitlist(self, claim: dict[str, Any], from_: tuple[str, ...], reason: str,
                    key: str) -> dict[str, Any]:
        """Put a claim in its session's line at `key`, announcing the place it takes."""
        position = place_in_line(self.repo.waitlist(claim["session_id"]),
                                 {**claim, "wait_key": key})
        done = self.repo.transition(claim["_id"], from_, "waitlisted", "system", reason,
                                    set_={"wait_key": key},
                                    events=(claim_events.waitlisted(claim, position),))
        return done or self.repo.claim(claim["_id"])

    def release(self, claim: dict[str, Any]) -> None:
        """Give a claim's seats back; on failure the sweep tries again (release_pending)."""
        try:
            self.venues.release(claim["session_id"], claim["_id"])
        except Exception:  # noqa: BLE001 - the flag stays, the sweep retries
            log.warning("release of %s failed; the sweep will retry", claim["_id"],
                        exc_info=True)
            return
        self.repo.update_claim(claim["_id"], unset=("release_pending",))
