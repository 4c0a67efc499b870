"""Managing who belongs: listing an organisation's members, removing one, disabling a person.

Removing a member takes effect at once, not at the next token expiry: the person's
access tokens are cut off (identity.user_cutoff: the gateway refuses tokens issued
before it), the refresh tokens of that membership are revoked, and the membership is
marked removed (identity.member_removed). The steps run in that order and each is safe to
repeat, so a removal interrupted part-way is finished by asking again. Their other
memberships survive: their clients refresh into new access tokens there.
"""

from __future__ import annotations

from typing import Any

from services.identity.audit import Audit
from services.identity.authority import Authority
from services.identity.memberships import Memberships, split
from services.identity.sessions import Sessions
from services.identity.users import Users
from services.identity.users import public as public_user
from services.kit.actor import Actor
from services.kit.errors import NotFound


class Members:
    def __init__(self, users: Users, memberships: Memberships, sessions: Sessions,
                 authority: Authority, audit: Audit) -> None:
        self.users = users
        self.memberships = memberships
        self.sessions = sessions
        self.authority = authority
        self.audit = audit

    def list(self, q: dict[str, Any], actor: Actor) -> dict[str, Any]:
        org = self.authority.scope(actor, q.get("org_id"))
        listing = self.memberships.of_org(org, q["limit"], q.get("cursor"))
        for item in listing["items"]:
            user = self.users.get(item["user_id"])
            item["user"] = public_user(user) if user else None
        return listing

    def remove(self, mid: str, actor: Actor) -> dict[str, Any]:
        user_id, org_id, role = split(mid)
        if not self.authority.manages(actor, org_id):
            raise NotFound(f"membership {mid} not found", code="membership-not-found")
        doc = self.memberships.get(mid)
        if doc["status"] != "active":
            return {**_brief(doc), "not_before": None}
        not_before = self.users.cut_off(user_id, "member-removed")
        self.sessions.revoke_membership(mid)
        self.memberships.remove(mid, actor.name)
        self.audit.action("member_removed", 200, actor=actor, org_id=org_id,
                          resource_id=mid, detail=f"{role} {user_id}")
        return {**_brief(doc), "status": "removed", "not_before": not_before}

    def set_status(self, user_id: str, status: str, actor: Actor) -> dict[str, Any]:
        """An admin disables a person (every sign-in ends at once) or enables them again."""
        actor.require(detail="only an admin may disable or enable a person")
        user = self.users.require(user_id)
        if status == "disabled":
            self.users.cut_off(user_id, "user-disabled", status="disabled")
            self.sessions.revoke_user(user_id)
        else:
            self.users.users.update_one({"_id": user_id}, {"$set": {"status": "active"}})
        self.audit.action("user_disabled" if status == "disabled" else "user_enabled", 200,
                          actor=actor, resource_id=user_id)
        return {**public_user(user), "status": status}


def _brief(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in ("membership_id", "user_id", "org_id", "role", "status")}


