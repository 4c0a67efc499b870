"""Attendance: the venue says who came, per confirmed claim, once the session has started.

Each record is announced (`booking.visit_attended`) for reports and funding.
"""

from __future__ import annotations

from typing import Any

from services.booking.repository import BookingRepository
from services.contracts.booking import AttendanceRequest
from services.kit import clock
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Conflict, Forbidden, ValidationFailed
from services.kit.outbox import event


def _checked(repo: BookingRepository, venue_id: str, session_id: str,
             records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(claim, record) pairs, or ValidationFailed naming every bad record."""
    errors: dict[str, list[str]] = {}
    claims = []
    for i, record in enumerate(records):
        claim = repo.find_claim(record["claim_id"])
        field = f"records.{i}.claim_id"
        if claim is None or claim["session_id"] != session_id:
            errors[field] = ["no such claim on this session"]
        elif claim["venue_id"] != venue_id:
            raise Forbidden("this session belongs to another venue")
        elif claim["status"] != "confirmed":
            errors[field] = [f"the claim is {claim['status']}, not confirmed"]
        elif record["students"] > sum(g["students"] for g in claim["groups"]):
            errors[f"records.{i}.students"] = ["more students than the claim booked"]
        else:
            claims.append((claim, record))
    if errors:
        raise ValidationFailed("attendance refused: " + "; ".join(
            f"{k}: {v[0]}" for k, v in errors.items()), errors)
    return claims


def record_attendance(repo: BookingRepository, actor: Actor, session_id: str,
                      payload: dict[str, Any]) -> list[dict[str, Any]]:
    request = load(AttendanceRequest, payload)
    venue_id = actor.org_as("venue", "only the venue's staff record attendance")
    claims = _checked(repo, venue_id, session_id, request["records"])
    if claims and clock.parse(claims[0][0]["trip"]["starts_at"]) > clock.now():
        raise Conflict("attendance can be recorded once the session has started",
                       code="session-not-started")
    recorded = []
    for claim, record in claims:
        booked = sum(g["students"] for g in claim["groups"])
        attendance = {"students": record["students"], "teachers": record["teachers"],
                      "students_booked": booked, "no_show": record["students"] == 0,
                      "recorded_at": clock.stamp(), "recorded_by": actor.name}
        attended = event("booking.visit_attended", {
            "claim_id": claim["_id"], "school_id": claim["school_id"],
            "session_id": session_id, "venue_id": claim["venue_id"],
            "district": claim.get("district", ""), "term": claim["term"],
            "students_booked": booked, "students_attended": record["students"],
            "teachers_attended": record["teachers"], "no_show": attendance["no_show"]})
        recorded.append(repo.update_claim(claim["_id"], {"attendance": attendance},
                                          events=(attended,), only_if={"status": "confirmed"}))
    return [r for r in recorded if r is not None]
