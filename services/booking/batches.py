"""Splitting a grade's classes across several sessions in preference order (分期分批).

`pack` plans where each class goes: classes are taken in the order given and each goes to
the earliest-preferred session it fits (grade range, supervision, seats still free after
the classes already planned there, the per-school limit). Nothing is held here; the desk
holds the plan, and undoes it when `all_or_nothing` cannot be met.
"""

from __future__ import annotations

from typing import Any

from services.booking.claims import check_groups, seats_of
from services.kit.errors import ValidationFailed


def fits(session: dict[str, Any], group: dict[str, Any]) -> str | None:
    """None if the class may join this session, else why not."""
    try:
        check_groups(session, [group])
    except ValidationFailed as exc:
        return exc.detail
    return None


def pack(groups: list[dict[str, Any]], sessions: list[dict[str, Any]],
         school_held: dict[str, int] | None = None) -> tuple[dict[str, list[dict]], list[dict]]:
    """(session_id → classes planned there, classes that fit nowhere with the reason)."""
    school_held = school_held or {}
    free = {s["session_id"]: s["seats_left"] for s in sessions}
    planned: dict[str, list[dict]] = {s["session_id"]: [] for s in sessions}
    unplaced = []
    for group in groups:
        reasons = []
        for session in sessions:
            sid = session["session_id"]
            why = fits(session, group)
            need = seats_of([group])
            limit = session.get("max_seats_per_school")
            already = school_held.get(sid, 0) + seats_of(planned[sid])
            if why is None and need > free[sid]:
                why = "not enough seats left"
            if why is None and limit is not None and already + need > limit:
                why = "over the session's limit per school"
            if why is None:
                planned[sid].append(group)
                free[sid] -= need
                break
            reasons.append(f"{sid}: {why}")
        else:
            unplaced.append({**group, "reason": "; ".join(reasons)})
    return {sid: gs for sid, gs in planned.items() if gs}, unplaced
