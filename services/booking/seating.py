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
from services.booking.claims import KNOWN_POSITION, place_in_line, wait_key
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

    def hold(self, claim: dict[str, Any], expected_version: int | None = None
             ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Hold a `holding` claim's seats and record the answer: (claim now, venues' answer).

        With `expected_version` (the session version the claim was checked against) venues
        may answer `stale`: nothing is recorded then, the caller checks again (claim_flow).
        """
        if expected_version is None:
            answer = self.venues.hold(claim["session_id"], claim["_id"], claim["school_id"],
                                      claim["seats"])
        else:
            answer = self.venues.hold(claim["session_id"], claim["_id"], claim["school_id"],
                                      claim["seats"], expected_version)
            if answer["reason"] == "stale":
                return claim, answer
        return self.settle(claim, answer), answer

    def resume(self, claim: dict[str, Any]) -> dict[str, Any]:
        """A claim caught mid-way (`holding`) gets its answer now: ask for the same hold again."""
        if claim["status"] != "holding" or claim.get("batch_id"):
            return claim
        return self.hold(claim)[0]

    def settle(self, claim: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """Complete a `holding` claim from the venues service's answer to its hold."""
        if answer["ok"]:
            return self._seated(claim)
        reason = answer["reason"]
        if reason == "full" and claim.get("waitlist", True):
            return self.to_waitlist(claim, ("holding",), "no seats left; waitlisted",
                                    claim.get("wait_key") or wait_key())
        done = self.repo.transition(claim["_id"], ("holding",), "rejected", "system",
                                    REFUSALS.get(reason, reason),
                                    set_={"reject_code": reason}, unset=("wait_key",))
        return done or self.repo.claim(claim["_id"])

    def _seated(self, claim: dict[str, Any]) -> dict[str, Any]:
        """Venues holds seats for this claim now: confirm it, or give them back.

        Another attempt at the same claim (a repeat of the request, the recovery sweep) may
        have settled it meanwhile on an earlier answer. Waitlisted: these seats are its own,
        so it is confirmed, as a promotion would (a promotion racing this holds under the
        same claim id, which counts once). Rejected or cancelled: it will never use them, so
        they go back (flagged first, so a crash leaves them to the sweep) — no seat stays
        held for a claim that does not have it.
        """
        seatable = ("holding", "waitlisted")
        current = claim
        while current["status"] in seatable:  # until it moved out of them, by us or another
            done = self.repo.transition(claim["_id"], seatable, "confirmed", "system",
                                        events=(claim_events.confirmed(claim),),
                                        unset=("wait_key",))
            current = done or self.repo.claim(claim["_id"])
        if current["status"] != "confirmed":
            flagged = self.repo.update_claim(claim["_id"], set_={"release_pending": True},
                                             only_if={"status": current["status"]})
            if flagged is not None:
                self.release(flagged)
                current = self.repo.claim(claim["_id"])
        return current

    def to_waitlist(self, claim: dict[str, Any], from_: tuple[str, ...], reason: str,
                    key: str) -> dict[str, Any]:
        """Put a claim in its session's line at `key`, announcing the place it takes."""
        position = place_in_line(self.repo.line(claim["session_id"]),
                                 {**claim, "wait_key": key})
        done = self.repo.transition(claim["_id"], from_, "waitlisted", "system", reason,
                                    set_={"wait_key": key},
                                    events=(claim_events.waitlisted(claim, position),))
        if done is None:
            return self.repo.claim(claim["_id"])
        return {**done, KNOWN_POSITION: position}

    def release(self, claim: dict[str, Any]) -> None:
        """Give a claim's seats back; on failure the sweep tries again (release_pending)."""
        try:
            self.venues.release(claim["session_id"], claim["_id"])
        except Exception:  # noqa: BLE001 - the flag stays, the sweep retries
            log.warning("release of %s failed; the sweep will retry", claim["_id"],
                        exc_info=True)
            return
        self.repo.update_claim(claim["_id"], unset=("release_pending",))
