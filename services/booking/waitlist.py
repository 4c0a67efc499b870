"""The waitlist: seats that come free go to waitlisted claims in line order, whole claims only.

A claim's place in line is its `wait_key` (when it joined, then its rank in an allocation),
ties broken by id; views show it as `waitlist_position`, counted among the session's
claims still waiting.
"""

from __future__ import annotations

from typing import Any

from services.booking.claims import KNOWN_POSITION, place_in_line
from services.booking.ports import Venues
from services.booking.repository import BookingRepository
from services.booking.seating import Seating
from services.kit import clock

ENDS_THE_LINE = ("closed", "cancelled", "not_found")  # hold refusals no later claim escapes


class Waitlist:
    def __init__(self, repo: BookingRepository, venues: Venues, seating: Seating) -> None:
        self.repo = repo
        self.venues = venues
        self.seating = seating

    def promote(self, session_id: str) -> list[str]:
        """Offer free seats to waitlisted claims in order; a claim takes them only whole."""
        waiting = self.repo.waitlist(session_id)
        if not waiting:
            return []
        session = self.venues.get_session(session_id)
        if session["status"] != "open" or clock.parse(session["starts_at"]) <= clock.now():
            return []
        seats_left, promoted = session["seats_left"], []
        for claim in waiting:
            if claim["seats"] > seats_left:
                continue
            taken = self.repo.transition(claim["_id"], ("waitlisted",), "holding", "system",
                                         "seats came free")
            if taken is None:
                continue
            done, answer = self.seating.hold({**claim, "status": "holding"})
            seats_left = answer["seats_left"]
            if done["status"] == "confirmed":
                promoted.append(claim["_id"])
            if answer.get("reason") in ENDS_THE_LINE:
                break
        return promoted

    def positions(self, claims: list[dict[str, Any]]) -> dict[str, int]:
        """claim id → place in line, for the waitlisted ones (one read per session, none for
        a claim that was just put in line)."""
        lines: dict[str, list[dict[str, Any]]] = {}
        found: dict[str, int] = {}
        for claim in claims:
            if claim["status"] != "waitlisted":
                continue
            if KNOWN_POSITION in claim:  # just put in line: the place it took
                found[claim["_id"]] = claim[KNOWN_POSITION]
                continue
            sid = claim["session_id"]
            if sid not in lines:
                lines[sid] = self.repo.line(sid)
            found[claim["_id"]] = place_in_line(lines[sid], claim)
        return found
