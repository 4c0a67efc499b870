"""Signing in: a password for a token pair; refresh, switch, sign out, `me`.

A sign-in yields a short access JWT (`access`) and an opaque refresh token: 256 random
bits, stored only as its SHA-256, valid 30 days, one of a *family* (the sign-in). Each
refresh spends the token and issues the next in the same family. A token presented twice
means one copy was stolen: the whole family is revoked, so thief and owner both must sign
in again. A refresh also checks that the person is active and still holds the membership.

A wrong identifier and a wrong password get the same answer after the same work
(`passwords.verify` against a dummy hash), counted by `throttle` per identifier and per
client address; a locked scope is refused before any hash is computed.
"""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection

from services.identity import access, contacts, tokens
from services.identity.audit import Audit
from services.identity.errors import Unauthenticated
from services.identity.memberships import Memberships, membership_id
from services.identity.passwords import Passwords
from services.identity.policy import Policy
from services.identity.throttle import (
    PER_ADDRESS,
    PER_IDENTIFIER,
    Throttle,
    address_scope,
    identifier_scope,
)
from services.identity.users import Users, issued_at
from services.identity.users import public as public_user
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Forbidden
from services.kit.ids import new_id

WRONG = "wrong identifier or password"


class Sessions:
    def __init__(self, refresh_tokens: Collection, users: Users, memberships: Memberships,
                 passwords: Passwords, throttle: Throttle, audit: Audit, policy: Policy,
                 secret: str) -> None:
        self.tokens = refresh_tokens
        self.users = users
        self.memberships = memberships
        self.passwords = passwords
        self.throttle = throttle
        self.audit = audit
        self.policy = policy
        self.secret = secret

    def ensure_indexes(self) -> None:
        self.tokens.create_index("expires_at", expireAfterSeconds=0)
        for key in ("family_id", "user_id", "membership_id"):
            self.tokens.create_index(key)

    # -- sign-in ---------------------------------------------------------------------------
    def login(self, identifier: str, password: str, client: dict[str, Any]) -> dict[str, Any]:
        kind, value = contacts.parse(identifier)
        who, where = identifier_scope(kind, value), address_scope(client.get("address"))
        self.throttle.check(who, where)
        user = self.users.by_identifier(kind, value)
        usable = user is not None and user.get("status") == "active"
        stored = user.get("password_hash") if usable and user else None
        if not self.passwords.verify(stored, password):
            self.throttle.fail(who, PER_IDENTIFIER)
            self.throttle.fail(where, PER_ADDRESS)
            self.audit.action("login_failed", 401, user_id=user["_id"] if user else None,
                              client_address=client.get("address"),
                              detail=contacts.mask(kind, value))
            raise Unauthenticated(WRONG, code="login-failed")
        assert user is not None and stored is not None
        self.throttle.clear(who)
        if self.passwords.needs_rehash(stored):
            self.users.set_password(user["_id"], self.passwords.hash(password), stored)
        membership = self._starting_membership(user)
        pair = self._issue(user, membership, new_id("fam"), client)
        self.audit.action("login", 200, user_id=user["_id"], org_id=membership["org_id"],
                          role=membership["role"], client_address=client.get("address"))
        return pair

    def _starting_membership(self, user: dict[str, Any]) -> dict[str, Any]:
        """The membership last switched to, if still held; else the oldest one held."""
        held = self.memberships.of_user(user["_id"])
        if not held:
            raise Forbidden("you belong to no organisation; ask for an invitation",
                            code="no-membership")
        last = user.get("last_membership")
        return next((m for m in held if m["membership_id"] == last), held[0])

    def _issue(self, user: dict[str, Any], membership: dict[str, Any], family_id: str,
               client: dict[str, Any]) -> dict[str, Any]:
        raw = f"rt_{tokens.new_secret()}"
        expires = clock.now() + self.policy.refresh_ttl
        self.tokens.insert_one({
            "_id": tokens.digest(raw), "family_id": family_id, "user_id": user["_id"],
            "membership_id": membership["membership_id"], "org_id": membership["org_id"],
            "role": membership["role"], "issued_at": clock.stamp(),
            "expires": clock.stamp(expires), "used": False, "revoked": False,
            "client_address": client.get("address"),
            "expires_at": clock.expiry(self.policy.refresh_ttl)})
        token, ttl = access.mint(self.secret, self.policy, user["_id"], membership["role"],
                                 membership["org_id"], issued_at(user), family_id)
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl,
                "refresh_token": raw, "refresh_expires_at": clock.stamp(expires),
                "user_id": user["_id"], "org_id": membership["org_id"],
                "role": membership["role"]}

    # -- refresh ---------------------------------------------------------------------------
    def refresh(self, raw: str, client: dict[str, Any]) -> dict[str, Any]:
        doc = self._live(raw)
        spent = self.tokens.find_one_and_update(
            {"_id": doc["_id"], "used": False, "revoked": False},
            {"$set": {"used": True, "used_at": clock.stamp()}})
        if spent is None:
            self.revoke_family(doc["family_id"])
            self.audit.action("refresh_reused", 401, user_id=doc["user_id"],
                              org_id=doc["org_id"], role=doc["role"],
                              resource_id=doc["family_id"],
                              client_address=client.get("address"))
            raise Unauthenticated("this refresh token was already used; sign in again",
                                  code="refresh-reused")
        user = self.users.get(doc["user_id"])
        membership = self.memberships.active(doc["user_id"], doc["org_id"], doc["role"])
        if user is None or user.get("status") != "active" or membership is None:
            self.revoke_family(doc["family_id"])
            raise Unauthenticated("this sign-in has ended; sign in again",
                                  code="refresh-revoked")
        return self._issue(user, membership, doc["family_id"], client)

    def _live(self, raw: str) -> dict[str, Any]:
        """The refresh token's record if it exists, is unexpired and its family alive."""
        doc = self.tokens.find_one({"_id": tokens.digest(raw or "")})
        if doc is None or doc["expires"] <= clock.stamp():
            raise Unauthenticated("unknown or expired refresh token", code="refresh-invalid")
        if doc["revoked"]:
            raise Unauthenticated("this sign-in has ended; sign in again",
                                  code="refresh-revoked")
        return doc

    # -- ending ----------------------------------------------------------------------------
    def revoke_family(self, family_id: str) -> int:
        return self.tokens.update_many({"family_id": family_id, "revoked": False},
                                       {"$set": {"revoked": True}}).modified_count

    def revoke_membership(self, mid: str) -> int:
        return self.tokens.update_many({"membership_id": mid, "revoked": False},
                                       {"$set": {"revoked": True}}).modified_count

    def revoke_user(self, user_id: str) -> int:
        return self.tokens.update_many({"user_id": user_id, "revoked": False},
                                       {"$set": {"revoked": True}}).modified_count

    def logout(self, raw: str, everywhere: bool, client: dict[str, Any]) -> dict[str, Any]:
        """End this sign-in (or, `everywhere`, all of them and the access tokens out there).

        An unknown or spent token is not an error: signing out is what the person wanted.
        """
        doc = self.tokens.find_one({"_id": tokens.digest(raw or "")})
        if doc is None:
            return {"signed_out": True}
        if everywhere:
            self.revoke_user(doc["user_id"])
            self.users.cut_off(doc["user_id"], "logout-everywhere")
        else:
            self.revoke_family(doc["family_id"])
        self.audit.action("logout", 200, user_id=doc["user_id"], org_id=doc["org_id"],
                          role=doc["role"], client_address=client.get("address"),
                          detail="everywhere" if everywhere else None)
        return {"signed_out": True}

    # -- who am I --------------------------------------------------------------------------
    def switch(self, actor: Actor, org_id: str | None, role: str,
               client: dict[str, Any]) -> dict[str, Any]:
        """A new token pair acting in another of the person's memberships."""
        user = self.users.get(actor.sub)
        membership = self.memberships.active(actor.sub, org_id, role) if user else None
        if user is None or user.get("status") != "active" or membership is None:
            raise Forbidden(f"you are not a {role} member of {org_id or 'the platform'}",
                            code="not-a-member")
        pair = self._issue(user, membership, new_id("fam"), client)
        self.users.remember_membership(actor.sub, membership_id(actor.sub, org_id, role))
        self.audit.action("switch", 200, user_id=actor.sub, org_id=org_id, role=role,
                          client_address=client.get("address"))
        return pair

    def me(self, actor: Actor) -> dict[str, Any]:
        user = self.users.get(actor.sub)
        if user is None:
            raise Forbidden("only a person has a profile", code="not-a-person")
        return {**public_user(user), "email": user.get("email"), "mobile": user.get("mobile"),
                "acting": {"org_id": actor.org, "role": actor.role},
                "memberships": self.memberships.of_user(actor.sub)}
