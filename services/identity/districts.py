"""Districts (education bureaux, 教育局) as organisations: registered by an admin.

A district has a name, an administrative code (`310115`, unique) and a time zone. Its
staff are members with the `district` (supervision) or `finance` role; its schools and
venues point at it (`organisations`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.identity.audit import Audit
from services.identity.organisations import Organisations
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Conflict, NotFound
from services.kit.outbox import event, with_events
from services.kit.pages import page, sort_key
from services.kit.request_keys import RequestKeys

PUBLIC = {"outbox": 0, "outbox_pending": 0}


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc[k] for k in ("district_id", "name", "code", "timezone", "created_at")}


class Districts:
    def __init__(self, organisations: Organisations, codes: Collection, once: RequestKeys,
                 audit: Audit) -> None:
        self.organisations = organisations
        self.audit = audit
        self.collection = organisations.collection
        self.codes = codes  # one document per code: `_id` unique on every server
        self.once = once

    def register(self, data: dict[str, Any], actor: Actor,
                 request_key: str | None = None) -> dict[str, Any]:
        actor.require(detail="only an admin may register districts")
        district_id, retried = self.once.new_id("district", "dis", actor.name, request_key,
                                                data)
        if retried and (earlier := self.collection.find_one({"_id": district_id})):
            return public(earlier)
        self._take_code(data["code"], district_id)
        now = clock.stamp()
        doc = {"_id": district_id, "district_id": district_id, "kind": "district",
               "name": data["name"], "code": data["code"], "timezone": data["timezone"],
               "created_at": now, "created_by": actor.name,
               "key": sort_key(now, district_id)}
        announced = event("identity.district_registered", public(doc))
        try:
            self.collection.insert_one(with_events(doc, announced))
        except DuplicateKeyError:  # a racing retry of the same request wrote it
            return public(self.collection.find_one({"_id": district_id}) or doc)
        self.organisations.adopt(district_id, doc["name"], doc["code"])
        self.audit.action("district_registered", 201, actor=actor, resource_id=district_id,
                          detail=f"{doc['code']} {doc['name']}")
        return public(doc)

    def _take_code(self, code: str, district_id: str) -> None:
        """Reserve `code` for `district_id`; a reservation whose district was never written
        (an attempt that died between the two writes, a minute ago or more) is taken over."""
        try:
            self.codes.insert_one({"_id": code, "district_id": district_id,
                                   "reserved_at": clock.stamp()})
            return
        except DuplicateKeyError:
            pass
        owner = (self.codes.find_one({"_id": code}) or {}).get("district_id")
        if owner == district_id:
            return
        if owner and self.collection.find_one({"_id": owner}, {"_id": 1}) is None:
            taken = self.codes.update_one(
                {"_id": code, "district_id": owner, "reserved_at": {"$lt": clock.later(-60)}},
                {"$set": {"district_id": district_id, "reserved_at": clock.stamp()}})
            if taken.modified_count:
                return
        raise Conflict(f"a district with code {code} exists", code="district-code-taken")

    def for_names(self, names: list[str], actor: Actor) -> dict[str, str]:
        """{name: district_id} for `kepu migrate districts` (kit.migrations): the district
        of that name, registered (code `MIG-<hash of the name>`, Asia/Shanghai) if there is
        none. A registered one is bound to a request key derived from the name, so a rerun
        or a racing run answers the same district."""
        actor.require(detail="only an admin migrates districts")
        found: dict[str, str] = {}
        for name in dict.fromkeys(names):
            known = self.collection.find_one({"kind": "district", "name": name}, {"_id": 1},
                                             sort=[("key", 1)])
            if known is None:
                digest = hashlib.sha256(name.encode()).hexdigest()[:12].upper()
                made = self.register({"name": name, "code": f"MIG-{digest}",
                                      "timezone": "Asia/Shanghai"}, actor,
                                     f"migrate-district:{digest}")
                known = {"_id": made["district_id"]}
            found[name] = known["_id"]
        return found

    def get(self, district_id: str) -> dict[str, Any]:
        doc = self.collection.find_one({"_id": district_id, "kind": "district"}, PUBLIC)
        if doc is None:
            raise NotFound(f"district {district_id} not found", code="district-not-found")
        return public(doc)

    def list(self, limit: int, cursor: str | None) -> dict[str, Any]:
        rows, after = page(self.collection, {"kind": "district"}, limit, cursor, PUBLIC)
        return {"items": [public(r) for r in rows], "next_cursor": after}
