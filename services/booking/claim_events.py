"""The events a claim's life announces, each built here and only here.

Every job that confirms, waitlists or cancels a claim stages the event these build, so
their payloads (contracts.booking) cannot drift between the claim flow, the waitlist,
batches and the window allocation.
"""

from __future__ import annotations

from typing import Any

from services.kit.outbox import event


def confirmed(claim: dict[str, Any]) -> dict[str, Any]:
    return event("booking.claim_confirmed", {
        "claim_id": claim["_id"], "school_id": claim["school_id"],
        "school_name": claim["school_name"], "session_id": claim["session_id"],
        "groups": claim["groups"], "seats": claim["seats"], "trip": claim["trip"]})


def waitlisted(claim: dict[str, Any], position: int | None) -> dict[str, Any]:
    return event("booking.claim_waitlisted", {
        "claim_id": claim["_id"], "school_id": claim["school_id"],
        "session_id": claim["session_id"], "position": position})


def cancelled(claim: dict[str, Any], by: str, reason: str) -> dict[str, Any]:
    return event("booking.claim_cancelled", {
        "claim_id": claim["_id"], "school_id": claim["school_id"],
        "session_id": claim["session_id"], "previous_status": claim["status"],
        "cancelled_by": by, "reason": reason, "groups": claim["groups"],
        "trip": claim["trip"]})


def allocation_completed(session_id: str, seed: str, confirmed_ids: list[str],
                         waitlisted_ids: list[str]) -> dict[str, Any]:
    return event("booking.allocation_completed", {
        "session_id": session_id, "seed": seed, "confirmed": confirmed_ids,
        "waitlisted": waitlisted_ids})
