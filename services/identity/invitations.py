"""Invitations: how a person joins an organisation (there is no self sign-up).

Admins invite anyone into any organisation (and other admins to the platform); an
organisation's managers invite into their own. An invitation goes to one e-mail address
or mainland mobile, as a link valid 7 days carrying `<invitation id>.<256-bit secret>`;
only the secret's SHA-256 is stored, so the database cannot produce a working link. The
link is delivered by the notifications service from `identity.invitation_sent` (written
in the same write as the invitation); the inviter never sees it.

Accepting spends the link once. A new person sets their password (the rules of
`passwords.check_new`) and becomes a user; someone who already has an account proves it
with their password and gains the membership. Accepting claims the invitation first (a
conditional update: single use), then writes the person and the membership; if the
process dies between, `repair` finishes the job from what the claim recorded.
Resending draws a new secret (the old link dies); revoking kills the link.
"""

from __future__ import annotations

import hmac
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.contracts.identity import ROLE_ORG_KIND
from services.identity import contacts, passwords, tokens
from services.identity.audit import Audit
from services.identity.authority import Authority
from services.identity.errors import Unauthenticated
from services.identity.memberships import Memberships
from services.identity.organisations import Organisations
from services.identity.passwords import Passwords
from services.identity.policy import Policy
from services.identity.throttle import PER_IDENTIFIER, Throttle, identifier_scope
from services.identity.users import Users
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, NotFound, validation_error
from services.kit.ids import new_id
from services.kit.outbox import add_events, event, with_events
from services.kit.pages import page, sort_key
from services.kit.request_keys import RequestKeys

FIELDS = ("invitation_id", "org_id", "org_kind", "role", "manager", "channel",
          "contact_masked", "language", "display_name", "state", "expires_at",
          "invited_by", "created_at", "accepted_at", "user_id")
HIDDEN = {"outbox": 0, "outbox_pending": 0, "token_digest": 0, "password_hash": 0}
STALE_S = 60  # an acceptance unfinished this long is finished by `repair`


def public(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: doc.get(k) for k in FIELDS}
    out["expires_at"] = doc.get("expires")
    if doc.get("state") == "pending" and doc.get("expires", "") <= clock.stamp():
        out["state"] = "expired"
    return out


class Invitations:
    def __init__(self, collection: Collection, users: Users, memberships: Memberships,
                 organisations: Organisations, authority: Authority, hasher: Passwords,
                 throttle: Throttle, audit: Audit, policy: Policy, once: RequestKeys) -> None:
        self.collection = collection
        self.users = users
        self.memberships = memberships
        self.organisations = organisations
        self.authority = authority
        self.hasher = hasher
        self.throttle = throttle
        self.audit = audit
        self.policy = policy
        self.once = once

    def ensure_indexes(self) -> None:
        for key in ("org_key", "contact_key", "state"):
            self.collection.create_index(key)

    # -- inviting --------------------------------------------------------------------------
    def invite(self, data: dict[str, Any], actor: Actor,
               request_key: str | None = None) -> dict[str, Any]:
        role, org_id = data["role"], data.get("org_id")
        org_kind = self.organisations.for_role(role, org_id)
        self.authority.require_manager(actor, org_id)
        if not actor.is_admin and ROLE_ORG_KIND[role] != ROLE_ORG_KIND[actor.role]:
            raise Forbidden(f"a {actor.role} manager invites only into a {actor.role} org",
                            code="role-forbidden")
        kind, value = _contact(data)
        invitation_id, retried = self.once.new_id("invitation", "inv", actor.name,
                                                  request_key, data)
        if retried and (earlier := self.collection.find_one({"_id": invitation_id}, HIDDEN)):
            return public(earlier)
        self._refuse_duplicate(kind, value, org_id, role)
        now = clock.stamp()
        doc = {"_id": invitation_id, "invitation_id": invitation_id, "org_id": org_id,
               "org_kind": org_kind, "role": role, "manager": data["manager"],
               "channel": "email" if kind == contacts.EMAIL else "sms",
               "contact_kind": kind, "contact": value,
               "contact_key": contacts.key(kind, value),
               "contact_masked": contacts.mask(kind, value), "language": data["language"],
               "display_name": data.get("display_name"), "state": "pending",
               "invited_by": actor.name, "created_at": now, "accepted_at": None,
               "user_id": None, "new_user_id": new_id("usr"),
               "org_key": sort_key(now, invitation_id)}
        raw, sets = self._new_link(doc)
        doc.update(sets)
        try:
            self.collection.insert_one(with_events(doc, self._sent(doc, raw, resent=False)))
        except DuplicateKeyError:  # a racing retry of this request wrote it first
            return public(self.collection.find_one({"_id": invitation_id}, HIDDEN) or doc)
        self.audit.action("invitation_sent", 201, actor=actor, org_id=org_id,
                          resource_id=invitation_id, detail=f"{role} {doc['contact_masked']}")
        return public(doc)

    def _refuse_duplicate(self, kind: str, value: str, org_id: str | None, role: str) -> None:
        user = self.users.by_identifier(kind, value)
        if user is not None and self.memberships.active(user["_id"], org_id, role):
            raise Conflict("this person is already a member with that role",
                           code="already-member")
        now = clock.stamp()
        for other in self.collection.find({"contact_key": contacts.key(kind, value)},
                                          {"org_id": 1, "role": 1, "state": 1, "expires": 1}):
            if (other["org_id"] == org_id and other["role"] == role
                    and other["state"] == "pending" and other["expires"] > now):
                raise Conflict(f"invitation {other['_id']} is still pending; resend it",
                               code="invitation-pending")

    def _new_link(self, doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raw = f"{doc['_id']}.{tokens.new_secret()}"
        expires = clock.stamp(clock.now() + self.policy.invitation_ttl)
        return raw, {"token_digest": tokens.digest(raw), "expires": expires}

    def _sent(self, doc: dict[str, Any], raw: str, resent: bool) -> dict[str, Any]:
        return event("identity.invitation_sent", {
            "invitation_id": doc["_id"], "channel": doc["channel"], "contact": doc["contact"],
            "contact_masked": doc["contact_masked"],
            "link": f"{self.policy.console_url}/accept-invitation?token={raw}",
            "language": doc["language"], "org_id": doc["org_id"],
            "org_name": self.organisations.name_of(doc["org_id"]), "role": doc["role"],
            "expires_at": doc["expires"], "resent": resent})

    def _managed(self, invitation_id: str, actor: Actor) -> dict[str, Any]:
        doc = self.collection.find_one({"_id": invitation_id}, HIDDEN)
        if doc is None or not self.authority.manages(actor, doc["org_id"]):
            raise NotFound(f"invitation {invitation_id} not found",
                           code="invitation-not-found")
        return doc

    def resend(self, invitation_id: str, actor: Actor) -> dict[str, Any]:
        """A new link (and 7 more days); the old link stops working at once."""
        doc = self._managed(invitation_id, actor)
        raw, sets = self._new_link(doc)
        done = self.collection.find_one_and_update(
            {"_id": invitation_id, "state": "pending"},
            add_events({"$set": sets}, self._sent({**doc, **sets}, raw, resent=True)),
            projection=HIDDEN, return_document=ReturnDocument.AFTER)
        if done is None:
            raise Conflict(f"invitation {invitation_id} is no longer pending",
                           code="invitation-closed")
        self.audit.action("invitation_resent", 200, actor=actor, org_id=doc["org_id"],
                          resource_id=invitation_id)
        return public(done)

    def revoke(self, invitation_id: str, actor: Actor) -> dict[str, Any]:
        doc = self._managed(invitation_id, actor)
        done = self.collection.find_one_and_update(
            {"_id": invitation_id, "state": "pending"},
            add_events({"$set": {"state": "revoked", "revoked_at": clock.stamp(),
                                 "revoked_by": actor.name}},
                       event("identity.invitation_revoked", {"invitation_id": invitation_id,
                                                             "org_id": doc["org_id"]})),
            projection=HIDDEN, return_document=ReturnDocument.AFTER)
        if done is None:
            raise Conflict(f"invitation {invitation_id} is no longer pending",
                           code="invitation-closed")
        self.audit.action("invitation_revoked", 200, actor=actor, org_id=doc["org_id"],
                          resource_id=invitation_id)
        return public(done)

    def list(self, q: dict[str, Any], actor: Actor) -> dict[str, Any]:
        flt: dict[str, Any] = {"org_id": self.authority.scope(actor, q.get("org_id"))}
        state = q.get("state")
        if state in ("pending", "expired"):
            flt["state"] = "pending"
            flt["expires"] = {"$gt" if state == "pending" else "$lte": clock.stamp()}
        elif state:
            flt["state"] = state
        rows, after = page(self.collection, flt, q["limit"], q.get("cursor"), HIDDEN,
                           key="org_key")
        return {"items": [public(r) for r in rows], "next_cursor": after}

    # -- accepting -------------------------------------------------------------------------
    def accept(self, data: dict[str, Any], client: dict[str, Any]) -> dict[str, Any]:
        doc = self._open(data["token"])
        user = self.users.by_identifier(doc["contact_kind"], doc["contact"])
        sets: dict[str, Any] = {"state": "accepted", "accepted_at": clock.stamp(),
                                "done": False}
        if user is not None:
            self._prove(user, data["password"], doc, client)
            sets["user_id"] = user["_id"]
        else:
            passwords.check_new(data["password"], (doc["contact"],))
            name = data.get("display_name") or doc.get("display_name")
            if not name:
                raise validation_error("display_name", "tell us your name")
            sets.update({"user_id": doc["new_user_id"], "display_name": name,
                         "language": data.get("language") or doc["language"],
                         "password_hash": self.hasher.hash(data["password"])})
        claimed = self.collection.find_one_and_update(
            {"_id": doc["_id"], "state": "pending", "token_digest": doc["token_digest"]},
            {"$set": sets}, return_document=ReturnDocument.AFTER)
        if claimed is None:
            raise Conflict("this invitation was used already", code="invitation-used")
        membership = self._complete(claimed)
        self.audit.action("invitation_accepted", 200, user_id=membership["user_id"],
                          org_id=membership["org_id"], role=membership["role"],
                          resource_id=doc["_id"], client_address=client.get("address"))
        return {"user_id": membership["user_id"], "membership": membership}

    def _open(self, raw: str) -> dict[str, Any]:
        """The pending, unexpired invitation this link names, if its secret matches."""
        invitation_id = raw.partition(".")[0]
        doc = self.collection.find_one({"_id": invitation_id}) if invitation_id else None
        if doc is None or not hmac.compare_digest(doc["token_digest"], tokens.digest(raw)):
            raise NotFound("this invitation link is not valid", code="invitation-invalid")
        if doc["state"] != "pending":
            raise Conflict(f"this invitation was {doc['state']}", code="invitation-closed")
        if doc["expires"] <= clock.stamp():
            raise Conflict("this invitation has expired; ask for a new one",
                           code="invitation-expired")
        return doc

    def _prove(self, user: dict[str, Any], password: str, doc: dict[str, Any],
               client: dict[str, Any]) -> None:
        """Someone with an account joins with their existing password (throttled)."""
        scope = identifier_scope(doc["contact_kind"], doc["contact"])
        self.throttle.check(scope)
        ok = user.get("status") == "active"
        if not self.hasher.verify(user.get("password_hash") if ok else None, password):
            self.throttle.fail(scope, PER_IDENTIFIER)
            self.audit.action("login_failed", 401, user_id=user["_id"],
                              resource_id=doc["_id"], client_address=client.get("address"))
            raise Unauthenticated("you have an account: use its password",
                                  code="login-failed")

    def _complete(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Write the person (if new) and the membership a claimed invitation promises."""
        user_id = doc["user_id"]
        if doc.get("password_hash"):
            user_id, _ = self.users.create(user_id, doc["contact_kind"], doc["contact"],
                                           doc["display_name"], doc["language"],
                                           doc["password_hash"])
        membership = self.memberships.add(user_id, doc["org_kind"], doc["org_id"],
                                          doc["role"], doc["manager"], doc["invited_by"])
        self.collection.update_one({"_id": doc["_id"]},
                                   {"$set": {"done": True, "user_id": user_id},
                                    "$unset": {"password_hash": ""}})
        self.audit.action("member_added", 201, user_id=user_id, org_id=doc["org_id"],
                          role=doc["role"], resource_id=membership["membership_id"],
                          detail=f"invited by {doc['invited_by']}")
        return membership

    def repair(self) -> int:
        """Finish acceptances a process died in the middle of; returns how many."""
        cutoff = clock.later(-STALE_S)
        done = 0
        for doc in self.collection.find({"state": "accepted", "done": False}):
            if doc.get("accepted_at") and doc["accepted_at"] < cutoff:
                self._complete(doc)
                done += 1
        return done


def _contact(data: dict[str, Any]) -> tuple[str, str]:
    if data.get("email"):
        value = contacts.normal_email(data["email"])
        if value:
            return contacts.EMAIL, value
        raise validation_error("email", "not a valid e-mail address")
    value = contacts.normal_mobile(data.get("mobile") or "")
    if value:
        return contacts.MOBILE, value
    raise validation_error("mobile", "not a mainland mobile number")
