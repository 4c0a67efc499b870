"""Who may see a school's rosters, delivery log and consents: that school's staff only.

Guardians' contacts are the most sensitive data Kepu holds; not even admins list them, so
this is stricter than `Actor.owns` (which lets an admin through).
"""

from __future__ import annotations

from services.kit.actor import Actor
from services.kit.errors import Forbidden


def require_school(actor: Actor, school_id: str, what: str) -> str:
    """The school's id if `actor` is staff of that very school; else Forbidden."""
    detail = f"only the school itself may read or change its {what}"
    if actor.org_as("school", detail=detail) != school_id:
        raise Forbidden(detail, code="not-your-school")
    return school_id


def own_school(actor: Actor, what: str) -> str:
    """The school `actor` acts for (school staff only; an admin has none)."""
    return actor.org_as("school", detail=f"only a school may read its {what}")
