"""Who may manage an organisation's people, invitations and API keys.

Admins manage every organisation. Anyone else manages only the organisation they are
acting for, and only while their membership there (with the role they act as) is active
and marked `manager`: the flag is read here, at the moment of the change, never taken
from the token, so a manager demoted or removed loses the power at once.
"""

from __future__ import annotations

from services.identity.memberships import Memberships
from services.identity.organisations import PLATFORM
from services.kit.actor import Actor
from services.kit.errors import Forbidden


class Authority:
    def __init__(self, memberships: Memberships) -> None:
        self.memberships = memberships

    def manages(self, actor: Actor, org_id: str | None) -> bool:
        if actor.is_admin:
            return True
        if org_id in (None, PLATFORM) or actor.org != org_id:
            return False
        return self.memberships.is_manager(actor.sub, org_id, actor.role)

    def require_manager(self, actor: Actor, org_id: str | None) -> Actor:
        if self.manages(actor, org_id):
            return actor
        raise Forbidden(f"only an admin or a manager of {org_id} may do this",
                        code="not-a-manager")

    def scope(self, actor: Actor, org_id: str | None) -> str | None:
        """The organisation a listing is about: the asked one, else the actor's own (None:
        the platform, for an admin)."""
        target = org_id or actor.org
        if target is None and not actor.is_admin:
            raise Forbidden("name the organisation", code="not-a-manager")
        self.require_manager(actor, target)
        return target
