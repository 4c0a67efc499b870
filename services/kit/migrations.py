"""Districts by id (issue #12.1): the directory a service keeps, and `kepu migrate districts`.

Schools and venues used to name their district (`"浦东新区"`); districts are now identity's
organisations, each with an id (`dis_…`), and a finance or district actor's org is that id.
This module holds the two pieces every owning service (booking, venues, funding) shares:

- `DistrictDirectory`: a service's copy of identity's districts, kept from
  `identity.district_registered` (idempotent: an upsert by id; order-tolerant: the
  migration writes the same entries it hands out, so whichever comes first, the other is a
  no-op), and `resolve()`, the registration rule while the transition lasts: a
  `district_id` must be known (else 422 on `district_id`); the old `district` name alone
  is still accepted and linked when exactly one known district has that name, else stored
  unlinked until the migration links it.
- `migrate_districts()`: the one-off move from names to ids, over RPC. Each owner answers
  `district_names()` (names in its data without an id), identity finds or creates a
  district per name (`districts_for_names`), and each owner applies
  `adopt_district_ids({name: id})` to its own data. Every step is idempotent, so running
  it twice (or again after a crash half-way) changes nothing more. docs/districts.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pymongo.collection import Collection

from services.kit.errors import ValidationFailed

OWNERS = ("booking", "venues", "funding")  # services whose data names districts
Call = Callable[..., Any]  # call(service, method, *args): an RPC client's `call`


class DistrictDirectory:
    """Identity's districts as one service knows them: `{_id: district_id, name, code}`."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        self.collection.create_index("name")

    def learn(self, data: dict[str, Any]) -> None:
        """Record a district from `identity.district_registered` (or the migration)."""
        known = {k: data[k] for k in ("name", "code", "timezone") if data.get(k) is not None}
        self.collection.update_one({"_id": data["district_id"]}, {"$set": known}, upsert=True)

    def get(self, district_id: str) -> dict[str, Any] | None:
        return self.collection.find_one({"_id": district_id})

    def names(self, district_ids: Iterable[str | None]) -> dict[str, str]:
        """{district_id: name} for the known ones among `district_ids`."""
        wanted = sorted({d for d in district_ids if d})
        if not wanted:
            return {}
        return {d["_id"]: d.get("name", "") for d in
                self.collection.find({"_id": {"$in": wanted}}, {"name": 1})}

    def by_name(self, name: str) -> str | None:
        """The id of the one known district called `name`; None if none or several."""
        found = list(self.collection.find({"name": name}, {"_id": 1}).limit(2))
        return found[0]["_id"] if len(found) == 1 else None

    def resolve(self, data: dict[str, Any]) -> tuple[str | None, str]:
        """(district_id, district name) for a registration carrying either or both."""
        district_id, name = data.get("district_id"), data.get("district")
        if district_id:
            known = self.get(district_id)
            if known is None:
                raise ValidationFailed(f"no district {district_id}",
                                       {"district_id": ["no such district"]})
            if name and name != known.get("name"):
                raise ValidationFailed(
                    "district and district_id disagree",
                    {"district": [f"district_id {district_id} is {known.get('name')!r}"]})
            return district_id, known.get("name") or ""
        if not name:
            raise ValidationFailed("a district is required",
                                   {"district_id": ["required: the district's id"]})
        return self.by_name(name), name


# -- what an owning service does with its own collections -----------------------------------
UNLINKED = {"$in": [None, ""]}  # matches a missing, null or empty district_id


def names_without_ids(collection: Collection, field: str = "district") -> set[str]:
    """Distinct district names of documents not yet linked to a district id."""
    rows = collection.aggregate([{"$match": {"district_id": UNLINKED}},
                                 {"$group": {"_id": f"${field}"}}])
    return {r["_id"] for r in rows if isinstance(r["_id"], str) and r["_id"]}


def adopt_ids(collection: Collection, mapping: dict[str, str],
              field: str = "district") -> int:
    """Link every unlinked document named in `mapping` to its district id; a repeat is 0."""
    done = 0
    for name, district_id in sorted(mapping.items()):
        done += collection.update_many({field: name, "district_id": UNLINKED},
                                       {"$set": {"district_id": district_id}}).modified_count
    return done


def checked_mapping(mapping: Any) -> dict[str, str]:
    """`{name: district_id}` as the migration sends it, or ValidationFailed."""
    if not isinstance(mapping, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in mapping.items()):
        raise ValidationFailed("mapping must be {district name: district id}",
                               {"mapping": ["an object of non-empty strings"]})
    return mapping


# -- the orchestrator -------------------------------------------------------------------
def migrate_districts(call: Call, actor: Callable[[], dict[str, Any]],
                      owners: Iterable[str] = OWNERS,
                      given: dict[str, str] | None = None) -> dict[str, Any]:
    """Move every owner's data from district names to ids; answers what it did.

    `actor()` gives a freshly signed admin for each call (the CLI signs
    `Actor.system("migrate-districts")`; a signature lives a minute). `given` maps names
    onto districts already registered under another name (`--map 浦东新区=dis_…`); each
    must exist in identity (else NotFound, before anything is changed). Safe to re-run:
    names already linked are no longer reported, identity answers the same id for the
    same name, and adopting an already linked document changes nothing.
    """
    owners = tuple(owners)
    given = dict(given or {})
    for district_id in sorted(set(given.values())):
        call("identity", "get_district", district_id)
    names: set[str] = set()
    for service in owners:
        names.update(call(service, "district_names", actor()))
    mapping = {name: given[name] for name in names if name in given}
    rest = sorted(names - set(mapping))
    if rest:
        mapping.update(call("identity", "districts_for_names", rest, actor()))
    adopted = {service: call(service, "adopt_district_ids", mapping, actor())
               for service in owners}
    return {"names": sorted(names), "districts": mapping, "adopted": adopted}
