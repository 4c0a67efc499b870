"""People: a display name, an e-mail address and/or a mainland mobile, a language, a
status, a password hash, and the cut-off before which their access tokens are refused.

Each identifier is its own document (`identifiers`, `_id` = `email:…` / `mobile:…`), so
"one person per e-mail address" is a unique `_id` on every server. A person is created
identifier first: a crash between the two writes leaves an identifier whose user is
missing, which `create` with the same user id completes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.identity import contacts
from services.kit import clock
from services.kit.errors import NotFound
from services.kit.outbox import add_events, event
from services.kit.pages import sort_key

STATUSES = ("active", "disabled")
HIDDEN = {"outbox": 0, "outbox_pending": 0, "password_hash": 0}


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A person as others may see them: no hash, contacts masked."""
    out = {k: doc.get(k) for k in ("user_id", "display_name", "language", "status",
                                   "created_at")}
    out["email"] = contacts.mask(contacts.EMAIL, doc["email"]) if doc.get("email") else None
    out["mobile"] = (contacts.mask(contacts.MOBILE, doc["mobile"])
                     if doc.get("mobile") else None)
    return out


class Users:
    def __init__(self, users: Collection, identifiers: Collection) -> None:
        self.users = users
        self.identifiers = identifiers

    def ensure_indexes(self) -> None:
        self.users.create_index("key")
        self.users.create_index("not_before")

    def create(self, user_id: str, kind: str, value: str, display_name: str,
               language: str, password_hash: str) -> tuple[str, bool]:
        """(the user id owning this identifier, whether it was created now)."""
        try:
            self.identifiers.insert_one({"_id": contacts.key(kind, value), "user_id": user_id})
        except DuplicateKeyError:
            owner = self.identifiers.find_one({"_id": contacts.key(kind, value)}) or {}
            user_id = owner.get("user_id", user_id)
            if self.get(user_id) is not None:
                return user_id, False
        now = clock.stamp()
        doc = {"_id": user_id, "user_id": user_id, "display_name": display_name,
               "email": value if kind == contacts.EMAIL else None,
               "mobile": value if kind == contacts.MOBILE else None,
               "language": language, "status": "active", "password_hash": password_hash,
               "not_before": 0, "created_at": now, "key": sort_key(now, user_id)}
        try:
            self.users.insert_one(doc)
        except DuplicateKeyError:
            return user_id, False
        return user_id, True

    def get(self, user_id: str) -> dict[str, Any] | None:
        return self.users.find_one({"_id": user_id}, {"outbox": 0})

    def require(self, user_id: str) -> dict[str, Any]:
        doc = self.get(user_id)
        if doc is None:
            raise NotFound(f"user {user_id} not found", code="user-not-found")
        return doc

    def by_identifier(self, kind: str, value: str) -> dict[str, Any] | None:
        link = self.identifiers.find_one({"_id": contacts.key(kind, value)})
        return self.get(link["user_id"]) if link else None

    def set_password(self, user_id: str, new_hash: str, old_hash: str | None = None) -> bool:
        """Store a new hash; with `old_hash`, only if it is still the stored one (rehash)."""
        flt: dict[str, Any] = {"_id": user_id}
        if old_hash is not None:
            flt["password_hash"] = old_hash
        return self.users.update_one(
            flt, {"$set": {"password_hash": new_hash, "password_at": clock.stamp()}}
        ).modified_count == 1

    def remember_membership(self, user_id: str, membership_id: str) -> None:
        """The membership a sign-in starts in next time (the last one switched to)."""
        self.users.update_one({"_id": user_id}, {"$set": {"last_membership": membership_id}})

    def cut_off(self, user_id: str, reason: str, status: str | None = None) -> int:
        """Refuse every access token the user holds now; returns the cut-off (epoch seconds).

        The cut-off is the next whole second: every token issued so far has an `iat` at
        or before this second, and tokens issued from now on carry `iat` no earlier than
        the cut-off (`issued_at`), so none is refused wrongly. The event rides in the same
        write as the stamp.
        """
        not_before = math.floor(clock.now().timestamp()) + 1
        stamp = clock.stamp(datetime.fromtimestamp(not_before, UTC))
        sets: dict[str, Any] = {"not_before": not_before}
        if status is not None:
            sets["status"] = status
        done = self.users.update_one({"_id": user_id}, add_events(
            {"$set": sets},
            event("identity.user_cutoff", {"user_id": user_id, "not_before": stamp,
                                            "not_before_epoch": not_before,
                                            "reason": reason})))
        if done.matched_count == 0:
            raise NotFound(f"user {user_id} not found", code="user-not-found")
        return not_before

    def recent_cutoffs(self, since_epoch: int) -> list[dict[str, Any]]:
        """Cut-offs the gateway must still enforce: those newer than `since_epoch`."""
        return [{"user_id": d["_id"], "not_before_epoch": d["not_before"]}
                for d in self.users.find({"not_before": {"$gt": since_epoch}},
                                         {"not_before": 1})]


def issued_at(user: dict[str, Any]) -> int:
    """The `iat` for a token issued to `user` now: never before their cut-off."""
    return max(math.floor(clock.now().timestamp()), int(user.get("not_before") or 0))
