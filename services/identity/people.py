"""People's display names for those who work with them, and nothing more.

A console shows who created or approved a payout run, who invited whom: it has user ids
and needs names. `names` answers a display name (no contact, no status) for each id that
is a member of the caller's own organisation; an admin may ask about anyone. Ids the
caller may not see, or that are unknown, are left out, so an id reveals nothing.
"""

from __future__ import annotations

from typing import Any

from services.identity.memberships import Memberships
from services.identity.users import Users
from services.kit.actor import Actor
from services.kit.errors import ValidationFailed

MAX_IDS = 100


def user_ids(text: str) -> list[str]:
    """`usr_a,usr_b` → the distinct ids in order; 1 to MAX_IDS of them."""
    ids = list(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))
    if not ids or len(ids) > MAX_IDS or any(len(i) > 64 for i in ids):
        raise ValidationFailed(f"ids must name 1 to {MAX_IDS} people",
                               {"ids": [f"1 to {MAX_IDS} comma-separated user ids"]})
    return ids


class People:
    def __init__(self, users: Users, memberships: Memberships) -> None:
        self.users = users
        self.memberships = memberships

    def visible(self, actor: Actor, ids: list[str]) -> list[str]:
        if actor.is_admin:
            return ids
        rows = self.memberships.collection.find(
            {"user_id": {"$in": ids}, "org_id": actor.org, "status": "active"},
            {"user_id": 1})
        members = {r["user_id"] for r in rows}
        return [i for i in ids if i in members]

    def names(self, actor: Actor, ids: list[str]) -> dict[str, Any]:
        """`{items: [{user_id, display_name}]}` in the order asked."""
        shown = self.visible(actor, ids)
        docs = {d["_id"]: d for d in self.users.users.find(
            {"_id": {"$in": shown}}, {"display_name": 1})}
        return {"items": [{"user_id": i, "display_name": docs[i].get("display_name") or ""}
                          for i in shown if i in docs], "next_cursor": None}
