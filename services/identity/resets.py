"""Forgotten passwords: a one-hour, single-use link to the person's own contact.

Asking always gets the same answer, whether or not the identifier has an account (no
enumeration), and at most a few links per identifier before a growing wait (`throttle`).
The link carries `<reset id>.<256-bit secret>`; only its SHA-256 is stored. Setting the
new password ends every sign-in of the person: refresh tokens revoked, access tokens cut
off (identity.user_cutoff).
"""

from __future__ import annotations

import hmac
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection

from services.identity import contacts, passwords, tokens
from services.identity.audit import Audit
from services.identity.passwords import Passwords
from services.identity.policy import Policy
from services.identity.sessions import Sessions
from services.identity.throttle import PER_RESET, Throttle, identifier_scope, reset_scope
from services.identity.users import Users
from services.kit import clock
from services.kit.errors import Conflict, NotFound
from services.kit.ids import new_id
from services.kit.outbox import event, with_events

ANSWER = {"requested": True}


class Resets:
    def __init__(self, collection: Collection, users: Users, sessions: Sessions,
                 hasher: Passwords, throttle: Throttle, audit: Audit, policy: Policy) -> None:
        self.collection = collection
        self.users = users
        self.sessions = sessions
        self.hasher = hasher
        self.throttle = throttle
        self.audit = audit
        self.policy = policy

    def ensure_indexes(self) -> None:
        self.collection.create_index("expires_at", expireAfterSeconds=0)

    def request(self, identifier: str, client: dict[str, Any]) -> dict[str, Any]:
        kind, value = contacts.parse(identifier)
        scope = reset_scope(kind, value)
        self.throttle.check(scope)
        self.throttle.fail(scope, PER_RESET)  # every request counts, account or not
        user = self.users.by_identifier(kind, value)
        if user is None or user.get("status") != "active":
            return ANSWER
        reset_id = new_id("rst")
        raw = f"{reset_id}.{tokens.new_secret()}"
        expires = clock.stamp(clock.now() + self.policy.reset_ttl)
        doc = {"_id": reset_id, "user_id": user["_id"], "contact_kind": kind,
               "token_digest": tokens.digest(raw), "expires": expires, "used": False,
               "created_at": clock.stamp(), "expires_at": clock.expiry(self.policy.reset_ttl)}
        self.collection.insert_one(with_events(doc, event(
            "identity.password_reset_requested", {
                "user_id": user["_id"], "channel": "email" if kind == contacts.EMAIL else "sms",
                "contact": value, "contact_masked": contacts.mask(kind, value),
                "link": f"{self.policy.console_url}/reset-password?token={raw}",
                "language": user.get("language") or "zh-CN", "expires_at": expires})))
        self.audit.action("password_reset_requested", 202, user_id=user["_id"],
                          client_address=client.get("address"))
        return ANSWER

    def confirm(self, raw: str, password: str, client: dict[str, Any]) -> dict[str, Any]:
        reset_id = raw.partition(".")[0]
        doc = self.collection.find_one({"_id": reset_id}) if reset_id else None
        if doc is None or not hmac.compare_digest(doc["token_digest"], tokens.digest(raw)):
            raise NotFound("this reset link is not valid", code="reset-invalid")
        if doc["used"] or doc["expires"] <= clock.stamp():
            raise Conflict("this reset link was used or has expired; ask for a new one",
                           code="reset-closed")
        user = self.users.require(doc["user_id"])
        passwords.check_new(password, (user.get("email") or "", user.get("mobile") or ""))
        new_hash = self.hasher.hash(password)
        spent = self.collection.find_one_and_update(
            {"_id": reset_id, "used": False}, {"$set": {"used": True, "used_at": clock.stamp()}},
            return_document=ReturnDocument.AFTER)
        if spent is None:
            raise Conflict("this reset link was used already", code="reset-closed")
        self.users.set_password(user["_id"], new_hash)
        self.sessions.revoke_user(user["_id"])
        self.users.cut_off(user["_id"], "password-reset")
        for kind, value in ((contacts.EMAIL, user.get("email")),
                            (contacts.MOBILE, user.get("mobile"))):
            if value:
                self.throttle.clear(identifier_scope(kind, value))
        self.audit.action("password_reset", 200, user_id=user["_id"],
                          client_address=client.get("address"))
        return {"reset": True}
