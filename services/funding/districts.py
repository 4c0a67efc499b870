"""Districts by id in funding's books (issue #12.1, `kepu migrate districts`).

A finance actor's org is its district's id (`dis_…`, identity's organisation), and every
funding record is keyed by that org in its `district` field and inside the ids that embed
it (ledger accounts `budget|<district>|<term>|<source>`, rate cards `<district>|<day>`,
school caps `<district>|<term>|<school>`). Records written before districts were
organisations carry the district's name there instead. The migration hands funding
`{name: id}`; `adopt()` rewrites those records to the id and remembers the name as an alias,
so a late event still naming the district (`resolve()`) lands on the id. Idempotent: a
record already moved is no longer found by its name; a copy already made is not made twice.

Run it while finance staff stand still (docs/districts.md): moving an account is a copy
and a delete, not one write.
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

ID_PREFIX = "dis_"  # identity's district ids (identity.districts: new_id(..., "dis", ...))
PLAIN = ("accruals", "payout_runs", "payout_lines", "statements", "statement_findings")


def is_district_id(value: str) -> bool:
    return value.startswith(ID_PREFIX)


def _moved(parts: list[str], at: int, mapping: dict[str, str]) -> str | None:
    """The id with its district part (`parts[at]`) renamed, or None if it names none."""
    if len(parts) <= at or parts[at] not in mapping:
        return None
    return "|".join(parts[:at] + [mapping[parts[at]]] + parts[at + 1:])


class FundingDistricts:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.aliases = db.district_aliases  # {_id: name, district_id}

    def resolve(self, visit: dict[str, Any]) -> dict[str, Any]:
        """A tutor-visit event keyed by the district id that pays: `district_id` when the
        event has it, else the id the migration gave its district's name, else the name
        (a school registered by name and not migrated yet)."""
        district = visit.get("district_id")
        if not district:
            alias = self.aliases.find_one({"_id": visit.get("district")}) if visit.get(
                "district") else None
            district = alias["district_id"] if alias else visit.get("district")
        return {**visit, "district": district}

    def names(self) -> set[str]:
        """Values of `district` in funding's records that are names, not ids."""
        found: set[str] = set()
        for collection in ("accruals", "rate_cards", "postings", "payout_runs"):
            rows = self.db[collection].aggregate([{"$group": {"_id": "$district"}}])
            found.update(r["_id"] for r in rows if isinstance(r["_id"], str) and r["_id"])
        return {v for v in found if not is_district_id(v)}

    def adopt(self, mapping: dict[str, str]) -> dict[str, int]:
        """Move every record naming a district in `mapping` to its id."""
        mapping = {k: v for k, v in mapping.items() if not is_district_id(k)}
        for name, district_id in mapping.items():
            self.aliases.update_one({"_id": name}, {"$set": {"district_id": district_id}},
                                    upsert=True)
        if not mapping:
            return {}
        done = {"accounts": self._move_ids("ledger_accounts", 1, mapping, district=True),
                "rate_cards": self._move_ids("rate_cards", 0, mapping, district=True),
                "school_caps": self._move_ids("school_caps", 0, mapping),
                "postings": self._postings(mapping),
                "entries": self._entries(mapping)}
        done["accruals.rate_card_id"] = self._card_refs(mapping)
        for collection in PLAIN:
            done[collection] = sum(self.db[collection].update_many(
                {"district": name}, {"$set": {"district": district_id}}).modified_count
                for name, district_id in mapping.items())
        return done

    def _move_ids(self, collection: str, at: int, mapping: dict[str, str],
                  district: bool = False) -> int:
        """Re-key documents whose id embeds a district name: copy under the new id, then
        delete the old one (a copy left by an interrupted run is kept, not doubled)."""
        coll, moved = self.db[collection], 0
        for doc in list(coll.find({}, {"_id": 1})):
            new_id = _moved(str(doc["_id"]).split("|"), at, mapping)
            if new_id is None:
                continue
            full = coll.find_one({"_id": doc["_id"]})
            if full is None:
                continue
            copy = {**full, "_id": new_id}
            if district:
                copy["district"] = mapping.get(full.get("district"), full.get("district"))
            try:
                coll.insert_one(copy)
            except DuplicateKeyError:
                pass
            moved += coll.delete_one({"_id": doc["_id"]}).deleted_count
        return moved

    def _postings(self, mapping: dict[str, str]) -> int:
        moved = 0
        for name, district_id in mapping.items():
            for doc in list(self.db.postings.find({"district": name}, {"entries": 1})):
                entries = [{**e, "account": _moved(e["account"].split("|"), 1, mapping)
                            or e["account"]} for e in doc.get("entries", [])]
                moved += self.db.postings.update_one(
                    {"_id": doc["_id"], "district": name},
                    {"$set": {"district": district_id, "entries": entries}}).modified_count
        return moved

    def _entries(self, mapping: dict[str, str]) -> int:
        moved = 0
        for name, district_id in mapping.items():
            for doc in list(self.db.entries.find({"district": name}, {"account": 1})):
                account = _moved(doc["account"].split("|"), 1, mapping) or doc["account"]
                moved += self.db.entries.update_one(
                    {"_id": doc["_id"], "district": name},
                    {"$set": {"district": district_id, "account": account}}).modified_count
        return moved

    def _card_refs(self, mapping: dict[str, str]) -> int:
        moved = 0
        for name in mapping:
            for doc in list(self.db.accruals.find({"district": name}, {"rate_card_id": 1})):
                card = _moved(str(doc.get("rate_card_id") or "").split("|"), 0, mapping)
                if card:
                    moved += self.db.accruals.update_one(
                        {"_id": doc["_id"]}, {"$set": {"rate_card_id": card}}).modified_count
        return moved
