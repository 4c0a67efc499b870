"""Who sees which figures: a district's staff their district, a school itself, a venue itself.

The district role and finance act for the district their org names (its id); a school sees
its own figures within its district, a venue the trips to its sessions; admin sees all.
Another district's figures answer 404, as if they did not exist.
"""

from __future__ import annotations

from services.kit.actor import Actor
from services.kit.errors import Forbidden, NotFound
from services.monitoring.term_facts import Scope

DISTRICT_ROLES = ("district", "finance")


def scope_for(actor: Actor, district_id: str) -> Scope:
    """The part of a district's figures this actor may read."""
    if actor.is_admin:
        return Scope()
    if actor.role in DISTRICT_ROLES:
        if actor.org != district_id:
            raise NotFound(f"district {district_id} not found", code="district-not-found")
        return Scope()
    if actor.role == "school" and actor.org:
        return Scope(schools=frozenset({actor.org}))
    if actor.role == "venue" and actor.org:
        return Scope(venues=frozenset({actor.org}))
    raise Forbidden("monitoring figures are for districts, schools and venues",
                    code="role-forbidden")

