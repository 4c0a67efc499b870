"""Memberships: a person in one organisation with one role, maybe as its manager.

A person may belong to several organisations (a teacher who also runs a youth palace),
and to one with several roles (a bureau's supervisor who is also its finance officer).
The id is `user|org|role`, so adding the same membership twice is one record; a removed
membership keeps its record (`status: removed`) for history and comes back if re-added.
Each change carries its event in the same write.
"""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.identity.organisations import PLATFORM
from services.kit import clock
from services.kit.errors import NotFound
from services.kit.outbox import add_events, event, with_events
from services.kit.pages import page, sort_key

FIELDS = ("membership_id", "user_id", "org_id", "org_kind", "role", "manager", "status",
          "created_at")
HIDDEN = {"outbox": 0, "outbox_pending": 0}


def membership_id(user_id: str, org_id: str | None, role: str) -> str:
    return f"{user_id}|{org_id or PLATFORM}|{role}"


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in FIELDS}


class Memberships:
    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        for key in ("user_id", "org_id", "key"):
            self.collection.create_index(key)

    def add(self, user_id: str, org_kind: str, org_id: str | None, role: str,
            manager: bool, by: str) -> dict[str, Any]:
        """The active membership, created (or restored) now if it was not active."""
        mid = membership_id(user_id, org_id, role)
        now = clock.stamp()
        doc = {"_id": mid, "membership_id": mid, "user_id": user_id, "org_id": org_id,
               "org_kind": org_kind, "role": role, "manager": manager, "status": "active",
               "created_at": now, "created_by": by, "org_key": sort_key(now, mid)}
        added = event("identity.member_added", public(doc))
        try:
            self.collection.insert_one(with_events(doc, added))
            return public(doc)
        except DuplicateKeyError:
            pass
        restored = self.collection.find_one_and_update(
            {"_id": mid, "status": "removed"},
            add_events({"$set": {"status": "active", "manager": manager, "restored_at": now,
                                 "restored_by": by}}, added),
            projection=HIDDEN, return_document=True)
        return public(restored or self.collection.find_one({"_id": mid}, HIDDEN) or doc)

    def get(self, mid: str) -> dict[str, Any]:
        doc = self.collection.find_one({"_id": mid}, HIDDEN)
        if doc is None:
            raise NotFound(f"membership {mid} not found", code="membership-not-found")
        return doc

    def active(self, user_id: str, org_id: str | None, role: str) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": membership_id(user_id, org_id, role),
                                         "status": "active"}, HIDDEN)

    def of_user(self, user_id: str) -> list[dict[str, Any]]:
        rows = self.collection.find({"user_id": user_id}, HIDDEN)
        return sorted((public(r) for r in rows if r["status"] == "active"),
                      key=lambda m: (m["created_at"], m["membership_id"]))

    def is_manager(self, user_id: str, org_id: str | None, role: str) -> bool:
        doc = self.active(user_id, org_id, role)
        return bool(doc and doc.get("manager"))

    def of_org(self, org_id: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
        rows, after = page(self.collection, {"org_id": org_id, "status": "active"}, limit,
                           cursor, HIDDEN, key="org_key")
        return {"items": [public(r) for r in rows], "next_cursor": after}

    def remove(self, mid: str, by: str) -> dict[str, Any] | None:
        """Mark the membership removed, its event in the same write; None if not active."""
        user_id, org, role = split(mid)
        removed = event("identity.member_removed", {"membership_id": mid, "user_id": user_id,
                                                    "org_id": org, "role": role, "by": by})
        doc = self.collection.find_one_and_update(
            {"_id": mid, "status": "active"},
            add_events({"$set": {"status": "removed", "removed_at": clock.stamp(),
                                 "removed_by": by}}, removed),
            projection=HIDDEN, return_document=True)
        return public(doc) if doc is not None else None


def split(mid: str) -> tuple[str, str | None, str]:
    """(user id, org id or None for the platform, role) of a membership id."""
    parts = mid.split("|")
    if len(parts) != 3:
        raise NotFound(f"membership {mid} not found", code="membership-not-found")
    user_id, org, role = parts
    return user_id, (None if org == PLATFORM else org), role
