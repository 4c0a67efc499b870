"""Who reads which claims and batches, and how they are shown.

A school reads its own claims and batches, a venue the claims on its sessions, an admin
everything (and may narrow a list to one school). Anything else reads as not found, so a
claim id reveals nothing to whoever does not own it.
"""

from __future__ import annotations

from typing import Any

from services.booking.claims import claim_view
from services.booking.repository import BookingRepository
from services.booking.waitlist import Waitlist
from services.kit.actor import Actor
from services.kit.errors import Forbidden, NotFound


def can_read_claim(actor: Actor, claim: dict[str, Any]) -> bool:
    return (actor.is_admin
            or (actor.role == "school" and actor.owns(claim["school_id"]))
            or (actor.role == "venue" and actor.owns(claim["venue_id"])))


def claim_filter(actor: Actor, query: dict[str, Any]) -> dict[str, Any]:
    """The claims `actor` may list, narrowed by the query (status, session, school)."""
    if actor.role == "school":
        flt: dict[str, Any] = {"school_id": actor.org_as("school")}
    elif actor.role == "venue":
        flt = {"venue_id": actor.org_as("venue")}
    elif actor.is_admin:
        flt = {"school_id": query["school_id"]} if query.get("school_id") else {}
    else:
        raise Forbidden(f"role {actor.role!r} may not list claims", code="role-forbidden")
    if query.get("session_id"):
        flt["session_id"] = query["session_id"]
    if query.get("status") == "pending":  # `holding` is an instant inside, shown pending
        flt["status"] = {"$in": ["pending", "holding"]}
    elif query.get("status"):
        flt["status"] = query["status"]
    return flt


class ClaimReads:
    def __init__(self, repo: BookingRepository, waitlist: Waitlist) -> None:
        self.repo = repo
        self.waitlist = waitlist

    def views(self, claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Claims as the API shows them, each waitlisted one with its place in line."""
        positions = self.waitlist.positions(claims)
        return [claim_view(c, positions.get(c["_id"])) for c in claims]

    def get(self, actor: Actor, claim_id: str) -> dict[str, Any]:
        claim = self.repo.claim(claim_id)
        if not can_read_claim(actor, claim):
            raise NotFound(f"claim {claim_id} not found", code="claim-not-found")
        return self.views([claim])[0]

    def list(self, actor: Actor, query: dict[str, Any]
             ) -> tuple[list[dict[str, Any]], str | None]:
        docs, cursor = self.repo.list_claims(claim_filter(actor, query), query["limit"],
                                             query.get("cursor"))
        return self.views(docs), cursor

    def batch(self, actor: Actor, batch_id: str) -> dict[str, Any]:
        """A batch its school (or an admin) reads."""
        batch = self.repo.batch(batch_id)
        if not (actor.is_admin or (actor.role == "school" and actor.owns(batch["school_id"]))):
            raise NotFound(f"batch {batch_id} not found", code="batch-not-found")
        return batch
