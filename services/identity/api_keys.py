"""API keys: per organisation, for integrations (a school's MIS, a venue's ticketing).

A key is `kepu_<prefix>_<secret>`: the prefix (12 hex digits) finds it, and is visible in
listings and logs so people can tell keys apart; the secret is 256 random bits shown once,
at creation, and stored only as the SHA-256 of the whole key (`tokens`). A key acts as
its organisation with one role, no greater than its creator's (an admin may create a key
of any organisation role; a manager only their own role, for their own organisation). A
key may expire; it can be revoked at once; it remembers when it was last used (to the
minute, so verifying does not write on every request). Keys belong to the organisation,
not to the person who created them: removing that person leaves the key working.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.identity import tokens
from services.identity.audit import Audit
from services.identity.authority import Authority
from services.identity.errors import Unauthenticated
from services.identity.organisations import Organisations
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Forbidden, NotFound, validation_error
from services.kit.outbox import add_events, event
from services.kit.pages import page, sort_key
from services.kit.request_keys import RequestKeys

PREFIX_HEX = 12
RAW = re.compile(r"kepu_([0-9a-f]{%d})_([A-Za-z0-9_\-]{43})" % PREFIX_HEX)
TOUCH_S = 60
FIELDS = ("api_key_id", "prefix", "name", "org_id", "role", "expires_at", "created_at",
          "created_by", "last_used_at", "revoked_at")
HIDDEN = {"outbox": 0, "outbox_pending": 0, "digest": 0}


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k) for k in FIELDS}


class ApiKeys:
    def __init__(self, collection: Collection, organisations: Organisations,
                 authority: Authority, audit: Audit, once: RequestKeys) -> None:
        self.collection = collection
        self.organisations = organisations
        self.authority = authority
        self.audit = audit
        self.once = once

    def ensure_indexes(self) -> None:
        self.collection.create_index("org_key")
        self.collection.create_index("prefix", unique=True)

    def create(self, data: dict[str, Any], actor: Actor,
               request_key: str | None = None) -> dict[str, Any]:
        """The new key's record and, this once, the key itself (`key`).

        A retry with the same request key answers the record without the key: it was
        shown once; revoke it and create another if that answer was lost.
        """
        org_id = data.get("org_id") or actor.org
        if not org_id:
            raise validation_error("org_id", "name the organisation the key acts for")
        self.authority.require_manager(actor, org_id)
        if not actor.is_admin and data["role"] != actor.role:
            raise Forbidden(f"a key's role may not exceed yours ({actor.role})",
                            code="role-above-creator")
        self.organisations.for_role(data["role"], org_id)
        if data.get("expires_at") and data["expires_at"] <= clock.stamp():
            raise validation_error("expires_at", "must be in the future")
        key_id, retried = self.once.new_id("api_key", "key", f"{actor.name}|{org_id}",
                                           request_key, data)
        if retried and (earlier := self.collection.find_one({"_id": key_id}, HIDDEN)):
            return public(earlier)
        return self._insert(key_id, org_id, data, actor)

    def _insert(self, key_id: str, org_id: str, data: dict[str, Any],
                actor: Actor) -> dict[str, Any]:
        for _ in range(5):
            prefix = secrets.token_hex(PREFIX_HEX // 2)
            raw = f"kepu_{prefix}_{tokens.new_secret()}"
            now = clock.stamp()
            doc = {"_id": key_id, "api_key_id": key_id, "prefix": prefix, "name": data["name"],
                   "org_id": org_id, "role": data["role"], "expires_at": data.get("expires_at"),
                   "created_at": now, "created_by": actor.name, "last_used_at": None,
                   "revoked_at": None, "digest": tokens.digest(raw),
                   "org_key": sort_key(now, prefix)}
            try:
                self.collection.insert_one(doc)
            except DuplicateKeyError:
                if (earlier := self.collection.find_one({"_id": key_id}, HIDDEN)):
                    return public(earlier)  # a racing retry of this request wrote it
                continue  # a prefix already taken (1 in 2^48): draw another
            self.audit.action("api_key_created", 201, actor=actor, resource_id=key_id,
                              org_id=org_id, detail=f"{prefix} {data['role']}")
            return {**public(doc), "key": raw}
        raise RuntimeError("could not draw a free API key prefix")

    def verify(self, raw: str) -> dict[str, Any]:
        """The principal a raw key acts as; Unauthenticated if unknown, revoked or expired."""
        match = RAW.fullmatch(raw or "") if isinstance(raw, str) else None
        doc = self.collection.find_one({"prefix": match.group(1)}) if match else None
        if doc is None or not hmac.compare_digest(doc["digest"], tokens.digest(raw)):
            raise Unauthenticated("unknown API key", code="api-key-invalid")
        if doc.get("revoked_at"):
            raise Unauthenticated("this API key was revoked", code="api-key-revoked")
        now = clock.stamp()
        if doc.get("expires_at") and doc["expires_at"] <= now:
            raise Unauthenticated("this API key has expired", code="api-key-expired")
        if not doc.get("last_used_at") or doc["last_used_at"] < clock.later(-TOUCH_S):
            self.collection.update_one({"_id": doc["_id"]}, {"$set": {"last_used_at": now}})
        return {"sub": doc["api_key_id"], "role": doc["role"], "org": doc["org_id"],
                "api_key_id": doc["api_key_id"], "prefix": doc["prefix"]}

    def list(self, org_id: str | None, actor: Actor, limit: int,
             cursor: str | None) -> dict[str, Any]:
        org = self.authority.scope(actor, org_id)
        rows, after = page(self.collection, {"org_id": org}, limit, cursor, HIDDEN,
                           key="org_key")
        return {"items": [public(r) for r in rows], "next_cursor": after}

    def revoke(self, api_key_id: str, actor: Actor) -> dict[str, Any]:
        doc = self.collection.find_one({"_id": api_key_id}, HIDDEN)
        if doc is None or not self.authority.manages(actor, doc["org_id"]):
            raise NotFound(f"API key {api_key_id} not found", code="api-key-not-found")
        if doc.get("revoked_at"):
            return public(doc)
        done = self.collection.find_one_and_update(
            {"_id": doc["_id"], "revoked_at": None},
            add_events({"$set": {"revoked_at": clock.stamp(), "revoked_by": actor.name}},
                       event("identity.api_key_revoked", {
                           "api_key_id": api_key_id, "prefix": doc["prefix"],
                           "org_id": doc["org_id"]})),
            projection=HIDDEN, return_document=True)
        self.audit.action("api_key_revoked", 200, actor=actor, resource_id=api_key_id,
                          org_id=doc["org_id"])
        return public(done or self.collection.find_one({"_id": doc["_id"]}, HIDDEN))
