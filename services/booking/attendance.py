"""Attendance: who came, per confirmed claim, once the session has started.

Recorded by the session's venue, or by the school for its own claims (the teacher on the
trip). Two forms, per claim: a head count (`students`), reported as a count; or who came of
each class (`groups`: roster pupil ids), checked against the class rosters the
notifications service keeps (`Rosters.class_pupils`). Booking stores pupil ids only, never
names. A class the pupil form leaves out had nobody there.

Each record is announced (`booking.visit_attended`, with per-class `pupil_ids` for the
pupil form) for monitoring (distinct pupils reached) and funding.
"""

from __future__ import annotations

from typing import Any, Protocol

from services.booking.repository import BookingRepository
from services.contracts.booking import AttendanceRequest
from services.kit import clock
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import Conflict, Forbidden, ValidationFailed
from services.kit.outbox import event

Errors = dict[str, list[str]]


class Rosters(Protocol):
    """The slice of the notifications service attendance reads: class rosters' pupil ids."""

    def class_pupils(self, school_id: str, labels: list[str]) -> dict[str, list[str]]: ...


def _recorder(actor: Actor) -> tuple[str, str]:
    """("venue"|"school", org id) of who may record attendance; Forbidden for the rest."""
    if actor.role in ("venue", "school") and actor.org:
        return actor.role, actor.org
    raise Forbidden("attendance is recorded by the session's venue or the claim's school",
                    code="role-forbidden")


def _claim_problem(claim: dict[str, Any] | None, session_id: str, role: str,
                   org: str) -> str | None:
    if claim is None or claim["session_id"] != session_id:
        return "no such claim on this session"
    owner = claim["venue_id"] if role == "venue" else claim["school_id"]
    if owner != org:
        raise Forbidden(f"this claim is not on your {'session' if role == 'venue' else 'trip'}",
                        code="attendance-forbidden")
    if claim["status"] != "confirmed":
        return f"the claim is {claim['status']}, not confirmed"
    return None


def _pupil_groups(rosters: Rosters, claim: dict[str, Any], record: dict[str, Any],
                  field: str, errors: Errors) -> list[dict[str, Any]]:
    """Per class of the claim: who came (pupil form), checked against the rosters."""
    booked = {g["label"]: g["students"] for g in claim["groups"]}
    given = {g["label"]: g["pupil_ids"] for g in record["groups"]}
    for j, g in enumerate(record["groups"]):
        if g["label"] not in booked:
            errors[f"{field}.groups.{j}.label"] = ["no such class on this claim"]
        elif len(g["pupil_ids"]) > booked[g["label"]]:
            errors[f"{field}.groups.{j}.pupil_ids"] = ["more pupils than the class booked"]
    if errors:
        return []
    roster = rosters.class_pupils(claim["school_id"], sorted(given))
    for j, g in enumerate(record["groups"]):
        known = set(roster.get(g["label"]) or ())
        unknown = [p for p in g["pupil_ids"] if p not in known]
        if unknown:
            errors[f"{field}.groups.{j}.pupil_ids"] = [
                "not on the class roster: " + ", ".join(unknown[:10])]
    return [{"label": label, "students_booked": n, "students_attended":
             len(given.get(label, [])), "pupil_ids": list(given.get(label, []))}
            for label, n in booked.items()]


def _checked(repo: BookingRepository, rosters: Rosters, actor: Actor, session_id: str,
             records: list[dict[str, Any]]) -> list[tuple[dict, dict, list | None]]:
    """(claim, record, groups) triples, or ValidationFailed naming every bad field."""
    role, org = _recorder(actor)
    errors: Errors = {}
    checked = []
    for i, record in enumerate(records):
        claim = repo.find_claim(record["claim_id"])
        problem = _claim_problem(claim, session_id, role, org)
        if problem or claim is None:
            errors[f"records.{i}.claim_id"] = [problem or "no such claim on this session"]
            continue
        groups = None
        if "groups" in record:
            mine: Errors = {}
            groups = _pupil_groups(rosters, claim, record, f"records.{i}", mine)
            errors.update(mine)
        elif record["students"] > sum(g["students"] for g in claim["groups"]):
            errors[f"records.{i}.students"] = ["more students than the claim booked"]
        checked.append((claim, record, groups))
    if errors:
        raise ValidationFailed("attendance refused: " + "; ".join(
            f"{k}: {v[0]}" for k, v in errors.items()), errors)
    return checked


def _attendance(claim: dict[str, Any], record: dict[str, Any], groups: list | None,
                actor: Actor) -> dict[str, Any]:
    booked = sum(g["students"] for g in claim["groups"])
    came = record["students"] if groups is None else sum(g["students_attended"]
                                                         for g in groups)
    return {"form": "count" if groups is None else "pupils", "students": came,
            "teachers": record["teachers"], "students_booked": booked,
            "no_show": came == 0, "groups": groups, "recorded_at": clock.stamp(),
            "recorded_by": actor.name}


def _announced(claim: dict[str, Any], session_id: str, attendance: dict[str, Any],
               actor: Actor) -> dict[str, Any]:
    return event("booking.visit_attended", {
        "claim_id": claim["_id"], "school_id": claim["school_id"],
        "session_id": session_id, "venue_id": claim["venue_id"],
        "district": claim.get("district", ""), "district_id": claim.get("district_id"),
        "term": claim["term"], "students_booked": attendance["students_booked"],
        "students_attended": attendance["students"],
        "teachers_attended": attendance["teachers"], "no_show": attendance["no_show"],
        "form": attendance["form"], "groups": attendance["groups"],
        "recorded_by_role": actor.role})


def record_attendance(repo: BookingRepository, rosters: Rosters, actor: Actor,
                      session_id: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
    request = load(AttendanceRequest, payload)
    _recorder(actor)
    checked = _checked(repo, rosters, actor, session_id, request["records"])
    if checked and clock.parse(checked[0][0]["trip"]["starts_at"]) > clock.now():
        raise Conflict("attendance can be recorded once the session has started",
                       code="session-not-started")
    recorded = []
    for claim, record, groups in checked:
        attendance = _attendance(claim, record, groups, actor)
        recorded.append(repo.update_claim(
            claim["_id"], {"attendance": attendance},
            events=(_announced(claim, session_id, attendance, actor),),
            only_if={"status": "confirmed"}))
    return [r for r in recorded if r is not None]
