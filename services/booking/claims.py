"""What makes a claim acceptable for a session, and how a claim document changes.

Pure functions: the claim flow (`claim_flow.py`) and the other jobs call them with a
session as the venues service describes it (contracts.venues.SessionView).
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime
from typing import Any

from services.contracts.terms import term_of
from services.kit import clock, pages
from services.kit.errors import ValidationFailed

ACTIVE = ("holding", "pending", "confirmed", "waitlisted")  # a claim that may hold or get seats
OPEN_FOR_CANCEL = ("pending", "confirmed", "waitlisted")


def seats_of(groups: list[dict[str, Any]]) -> int:
    """Teachers sit in the session too: capacity counts every person."""
    return sum(g["students"] + g["teachers"] for g in groups)


def check_groups(session: dict[str, Any], groups: list[dict[str, Any]],
                 field: str = "groups") -> None:
    """Refuse classes the session cannot take, naming each offending field."""
    errors: dict[str, list[str]] = {}
    low, high = session["grades"]
    rule = session.get("min_teachers_per_students")
    for i, group in enumerate(groups):
        if not low <= group["grade"] <= high:
            errors.setdefault(f"{field}.{i}.grade", []).append(
                f"grade {group['grade']} ({group['label']}) is outside this session's "
                f"grades {low}–{high}")
        if rule:
            needed = math.ceil(group["students"] * rule["teachers"] / rule["per_students"])
            if group["teachers"] < needed:
                errors.setdefault(f"{field}.{i}.teachers", []).append(
                    f"{group['label']} needs at least {needed} teachers for "
                    f"{group['students']} students ({rule['teachers']} per "
                    f"{rule['per_students']})")
    limit = session.get("max_seats_per_school")
    if limit is not None and seats_of(groups) > limit:
        errors.setdefault(field, []).append(
            f"{seats_of(groups)} seats is over this session's limit of {limit} per school")
    if errors:
        raise ValidationFailed("the classes do not fit this session: "
                               + "; ".join(m for ms in errors.values() for m in ms), errors)


def check_session_open(session: dict[str, Any], now: datetime, field: str = "session_id") -> None:
    """A session that is cancelled, started, or for families only cannot be claimed."""
    if session["status"] == "cancelled":
        raise ValidationFailed("this session was cancelled", {field: ["session is cancelled"]})
    if clock.parse(session["starts_at"]) <= now:
        raise ValidationFailed("this session has already started",
                               {field: ["session has already started"]})
    if session["audience"] != "students":
        raise ValidationFailed("family sessions (亲子) are booked by families, not by schools",
                               {field: [f"audience is {session['audience']}, not students"]})


def trip_of(session: dict[str, Any]) -> dict[str, Any]:
    """The trip details parents are told, snapshotted on the claim."""
    venue = session.get("venue") or {}
    return {
        "session_id": session["session_id"], "title": session["title"],
        "venue_id": session["venue_id"], "venue_name": venue.get("name", ""),
        "venue_address": venue.get("address", ""), "starts_at": session["starts_at"],
        "ends_at": session["ends_at"], "timezone": session.get("timezone", "Asia/Shanghai"),
        "what_to_bring": session.get("what_to_bring"), "price_fen": session.get("price_fen", 0),
    }


def session_copy(session: dict[str, Any]) -> dict[str, Any]:
    """What a claim copies from its session (set again if the session changed before the
    hold); `session_version` is the version the claim was checked against."""
    return {"term": term_of(clock.parse(session["starts_at"])), "trip": trip_of(session),
            "cancel_cutoff_hours": session.get("cancel_cutoff_hours", 24),
            "session_version": session.get("version")}


def history_entry(status: str, actor: str, reason: str | None = None) -> tuple[str, dict]:
    """A history map entry: keys sort by time (arrays of documents are not used; see kit.mongo)."""
    at = clock.stamp()
    return f"history.{at.replace('.', '_')}-{secrets.token_hex(3)}", {
        "at": at, "status": status, "actor": actor, "reason": reason}


def new_claim(claim_id: str, school: dict[str, Any], session: dict[str, Any],
              groups: list[dict[str, Any]], *, status: str, actor: str,
              waitlist: bool = True, batch_id: str | None = None,
              split_from: str | None = None, request_key: str | None = None,
              reason: str | None = None, fingerprint: str | None = None) -> dict[str, Any]:
    at = clock.stamp()
    key, entry = history_entry(status, actor, reason)
    doc = {
        "_id": claim_id, "claim_id": claim_id, "school_id": school["school_id"],
        "school_name": school["name"], "district": school["district"],
        "district_id": school.get("district_id"),
        "session_id": session["session_id"], "venue_id": session["venue_id"],
        "policy": session["claim_policy"], "groups": groups, "seats": seats_of(groups),
        "status": status, "reason": reason, "waitlist": waitlist, **session_copy(session),
        "created_at": at, "updated_at": at, "history": {key.split(".", 1)[1]: entry},
        "list_key": pages.sort_key(at, claim_id),
    }
    if batch_id:
        doc["batch_id"] = batch_id
    if split_from:
        doc["split_from"] = split_from
    if request_key:
        doc["request_key"] = request_key
    if fingerprint:  # the claim is its own Idempotency-Key record (claim_flow)
        doc["request_fingerprint"] = fingerprint
    return doc


def history_list(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for _, entry in sorted((doc.get("history") or {}).items())]


def wait_key(position: int = 0) -> str:
    """Order in the waitlist: when the claim joined it, then its place in an allocation."""
    return f"{clock.stamp()}|{position:06d}"


def line_order(claim: dict[str, Any]) -> tuple[str, str]:
    """Where a waitlisted claim stands in its session's line (compared in Python: a wait key
    starts like an ISO time, which nx-27017 would compare only to the second; see
    kit/mongo.py, "nx-27017")."""
    return claim.get("wait_key", ""), claim["_id"]


# Not stored: set on a claim just put in line to the place it took, so answering it needs
# no second read of the line (`Waitlist.positions`).
KNOWN_POSITION = "_place_in_line"


def place_in_line(waiting: list[dict[str, Any]], claim: dict[str, Any]) -> int:
    """1-based position `claim` has (or would have) among a session's waitlisted claims."""
    mine = line_order(claim)
    return 1 + sum(1 for other in waiting
                   if other["_id"] != claim["_id"] and line_order(other) < mine)


def claim_view(doc: dict[str, Any], waitlist_position: int | None = None) -> dict[str, Any]:
    """A claim as the API shows it: `holding` is an instant inside the service, shown pending."""
    status = "pending" if doc["status"] == "holding" else doc["status"]
    history = [{**h, "status": "pending" if h["status"] == "holding" else h["status"]}
               for h in history_list(doc)]
    return {**doc, "status": status, "history": history,
            "waitlist_position": waitlist_position if doc["status"] == "waitlisted" else None,
            "batch_id": doc.get("batch_id"), "split_from": doc.get("split_from"),
            "attendance": doc.get("attendance"), "reason": doc.get("reason")}
