"""Who may change a venue's record, tutors and sessions: its own staff, or an admin."""

from __future__ import annotations

from typing import Any

from services.kit.errors import Forbidden


def require_manager(actor: dict[str, Any] | None, venue_id: str) -> None:
    """Raise Forbidden unless `actor` is an admin or staff of `venue_id`."""
    role = (actor or {}).get("role")
    if role == "admin":
        return
    if role == "venue" and actor and actor.get("org") == venue_id:
        return
    raise Forbidden(f"only {venue_id}'s own staff may change it", code="not-your-venue")


def may_read_tutors(actor: dict[str, Any] | None, venue_id: str) -> None:
    """A venue's tutor list: its staff, admins, and schools choosing whom to invite (请进来)."""
    if (actor or {}).get("role") == "school":
        return
    require_manager(actor, venue_id)
