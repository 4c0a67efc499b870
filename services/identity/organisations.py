"""The organisations people belong to, as identity knows them: which kind, which district.

Districts are registered here (`districts`); schools and venues are registered by booking
and venues and learned from their events (`learn`), so audit and membership scoping can
ask "which district is this school in?" without calling them. Those events name the
district by its name or code (`浦东新区`); a school learned before its district was
registered keeps the label and gets the id when the district arrives (`adopt`).
The platform itself is the organisation of admins: `PLATFORM`, never stored.
"""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection

from services.contracts.identity import ROLE_ORG_KIND
from services.kit import clock
from services.kit.errors import NotFound, validation_error

PLATFORM = "platform"


class Organisations:
    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        for key in ("kind", "district_id", "district_label", "code", "key"):
            self.collection.create_index(key)

    def get(self, org_id: str) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": org_id}, {"outbox": 0})

    def district_of(self, org_id: str | None) -> str | None:
        """The district an organisation is in (a district is in itself); None if unknown."""
        if not org_id:
            return None
        doc = self.collection.find_one({"_id": org_id}, {"kind": 1, "district_id": 1})
        if doc is None:
            return None
        return org_id if doc["kind"] == "district" else doc.get("district_id")

    def name_of(self, org_id: str | None) -> str | None:
        doc = self.get(org_id) if org_id else None
        return doc.get("name") if doc else None

    def named(self, memberships: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Memberships with their organisation's `org_name` (None while unknown; the
        platform has none) and `org_kind`, read in one query."""
        ids = list({m["org_id"] for m in memberships if m.get("org_id")} - {PLATFORM})
        found = {d["_id"]: d for d in self.collection.find({"_id": {"$in": ids}},
                                                            {"name": 1, "kind": 1})}
        return [{**m, "org_name": found.get(m.get("org_id"), {}).get("name"),
                 "org_kind": m.get("org_kind") or found.get(m.get("org_id"), {}).get("kind")
                 or (PLATFORM if m.get("org_id") in (None, PLATFORM) else None)}
                for m in memberships]

    def for_role(self, role: str, org_id: str | None, field: str = "org_id") -> str:
        """The organisation kind a `role` membership of `org_id` needs, checked.

        An admin belongs to the platform; a district or finance membership needs a
        registered district; a school or venue membership needs an organisation of that
        kind if identity knows it (one not learned yet is accepted: the events may lag).
        """
        kind = ROLE_ORG_KIND[role]
        if kind == PLATFORM:
            if org_id not in (None, PLATFORM):
                raise validation_error(field, "an admin belongs to the platform")
            return kind
        doc = self.get(org_id) if org_id else None
        if kind == "district" and doc is None:
            raise NotFound(f"district {org_id} not found", code="district-not-found")
        if doc is not None and doc["kind"] != kind:
            raise validation_error(field, f"{org_id} is a {doc['kind']}, not a {kind}")
        return kind

    def learn(self, kind: str, org_id: str, name: str, district_label: str | None) -> None:
        """A school or venue as its producer announced it; the latest announcement wins."""
        district = self._district_by_label(district_label)
        self.collection.update_one(
            {"_id": org_id},
            {"$set": {"kind": kind, "name": name, "district_label": district_label,
                      "district_id": district, "learned_at": clock.stamp()}},
            upsert=True)

    def adopt(self, district_id: str, name: str, code: str) -> int:
        """Give schools and venues learned under this district's name or code its id."""
        done = 0
        for label in {name, code}:
            done += self.collection.update_many(
                {"district_label": label, "district_id": None},
                {"$set": {"district_id": district_id}}).modified_count
        return done

    def _district_by_label(self, label: str | None) -> str | None:
        if not label:
            return None
        for field in ("code", "name"):
            doc = self.collection.find_one({"kind": "district", field: label}, {"_id": 1})
            if doc is not None:
                return doc["_id"]
        return None
