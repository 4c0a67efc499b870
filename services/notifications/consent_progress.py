"""Consent progress of several claims at once, as counts only: how many pupils, how many
yes, no, not yet. No name and no contact, so the venue a trip goes to may see it for
the claims on its sessions (the school sees its own; an admin any). Claims the caller may
not see, or that notifications does not know (never confirmed), are left out, as if
unknown: an id reveals nothing.
"""

from __future__ import annotations

from typing import Any

from services.contracts.common import class_label_key
from services.kit.actor import Actor
from services.kit.errors import Forbidden, ValidationFailed
from services.notifications import consent
from services.notifications.repository import NotificationsRepository

MAX_CLAIMS = 100


def claim_ids(text: str) -> list[str]:
    """`a,b,c` → the distinct ids in order; at most MAX_CLAIMS."""
    ids = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not ids or len(ids) > MAX_CLAIMS or any(len(i) > 64 for i in ids):
        raise ValidationFailed(f"claim_ids must name 1 to {MAX_CLAIMS} claims",
                               {"claim_ids": [f"1 to {MAX_CLAIMS} comma-separated claim ids"]})
    return ids


def may_see(actor: Actor, claim: dict[str, Any]) -> bool:
    if actor.is_admin:
        return True
    if actor.role == "venue":
        return actor.owns(claim["trip"].get("venue_id"))
    if actor.role == "school":
        return actor.owns(claim["school_id"])
    return False


def progress(repo: NotificationsRepository, actor: Actor, ids: list[str]
             ) -> dict[str, Any]:
    """`{items: [{claim_id, claim_status, summary}]}` in the order asked."""
    if not (actor.is_admin or actor.role in ("venue", "school")):
        raise Forbidden(f"role {actor.role!r} may not read consent progress",
                        code="role-forbidden")
    claims = [c for c in repo.claims_by_ids(ids) if may_see(actor, c)]
    answers = repo.consent_records_of(ids=[c["_id"] for c in claims])
    rosters: dict[str, list[dict[str, Any]]] = {}
    items = {}
    for claim in claims:
        school = claim["school_id"]
        if school not in rosters:
            rosters[school] = repo.rosters_of(school)
        pupils = consent_pupils(rosters[school], claim["labels"])
        latest = consent.current(answers.get(claim["_id"], []))
        items[claim["_id"]] = {"claim_id": claim["_id"], "claim_status": claim["status"],
                               "summary": consent.summary(pupils, latest)}
    return {"items": [items[i] for i in ids if i in items], "next_cursor": None}


def consent_pupils(rosters: list[dict[str, Any]], labels: list[str]) -> list[str]:
    """The pupil ids of the classes named by `labels` (matched as consent does)."""
    keys = {class_label_key(label) for label in labels}
    return [p["pupil_id"] for r in rosters if class_label_key(r["label"]) in keys
            for p in r["pupils"]]
