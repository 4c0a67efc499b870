"""Who may change a venue's record, tutors and sessions: its own staff, or an admin.

The actor arrives verified (`kit.actor`); a call that changes something without one (None)
is refused like any stranger, never treated as the platform.
"""

from __future__ import annotations

from services.kit.actor import Actor
from services.kit.errors import Forbidden


def require_manager(actor: Actor | None, venue_id: str) -> Actor:
    """`actor`, if an admin or staff of `venue_id`; else Forbidden."""
    if actor is not None and (actor.is_admin or (actor.role == "venue" and actor.owns(venue_id))):
        return actor
    raise Forbidden(f"only {venue_id}'s own staff may change it", code="not-your-venue")


def require_admin(actor: Actor | None, what: str) -> Actor:
    """`actor`, if an admin: registering venues is the platform's, not a venue's, call."""
    if actor is None:
        raise Forbidden(f"only an admin may {what}", code="role-forbidden")
    return actor.require(detail=f"only an admin may {what}")


def may_read_tutors(actor: Actor | None, venue_id: str) -> Actor:
    """A venue's tutor list: its staff, admins, and schools choosing whom to invite (请进来)."""
    if actor is not None and actor.role == "school":
        return actor
    return require_manager(actor, venue_id)
