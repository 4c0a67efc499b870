"""The audit trail: who did what, where, when, with what outcome — append-only.

Two sources write here: the gateway, one record per request it answered (method, route
template, resource id, status, the person or API key, request id, client address), and
identity itself for its own actions (sign-in, failed sign-in, sign-out, invitations,
membership changes, API keys). Records are inserted and never updated; each carries the
district of its organisation, fixed when written, so a district sees its schools' and
venues' records without a join.

Who reads: an admin everything; `district` staff their district's records (the bureau
and its schools and venues); a manager their own organisation's. Records expire after the
retention (default 3 years) by a TTL index on `expires_at`.
"""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from services.identity.authority import Authority
from services.identity.organisations import Organisations
from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Forbidden, ValidationFailed
from services.kit.ids import new_id
from services.kit.pages import page, sort_key
from services.kit.spreadsheets import write_csv

COLUMNS = ("at", "action", "outcome", "method", "route", "resource_id", "user_id",
           "org_id", "role", "api_key_id", "request_id", "client_address", "detail")
ACTIONS = ("request", "login", "login_failed", "logout", "refresh_reused", "switch",
           "password_reset_requested", "password_reset", "invitation_sent",
           "invitation_resent", "invitation_revoked", "invitation_accepted",
           "member_added", "member_removed", "user_disabled", "user_enabled",
           "district_registered", "api_key_created", "api_key_revoked", "token_minted")
EXPORT_MAX = 20_000
HIDDEN = {"_id": 0, "expires_at": 0, "district_id": 0}  # `key` is kept: pages need it


class Audit:
    def __init__(self, collection: Collection, organisations: Organisations,
                 authority: Authority, retention: Any) -> None:
        self.collection = collection
        self.organisations = organisations
        self.authority = authority
        self.retention = retention

    def ensure_indexes(self) -> None:
        self.collection.create_index("expires_at", expireAfterSeconds=0)
        for key in ("key", "user_id", "org_id", "district_id", "action", "resource_id"):
            self.collection.create_index(key)

    # -- writing ---------------------------------------------------------------------------
    def action(self, action: str, outcome: int, *, actor: Actor | None = None,
               user_id: str | None = None, org_id: str | None = None,
               role: str | None = None, resource_id: str | None = None,
               client_address: str | None = None, detail: str | None = None) -> None:
        """Record one of identity's own actions (`ACTIONS`); `outcome` as an HTTP status."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        if actor is not None:
            user_id, org_id, role = user_id or actor.sub, org_id or actor.org, role or actor.role
        self._insert({"action": action, "outcome": outcome, "method": None, "route": None,
                      "resource_id": resource_id, "user_id": user_id, "org_id": org_id,
                      "role": role, "api_key_id": None, "request_id": None,
                      "client_address": client_address, "detail": detail})

    def requests(self, entries: list[dict[str, Any]]) -> int:
        """Record requests the gateway answered (entries loaded by `AuditEntry`).

        An entry's `entry_id` becomes the record's id, so a batch the gateway sends again
        (its first attempt timed out after we wrote it) is written once."""
        districts = self._districts({e["org_id"] for e in entries if e.get("org_id")})
        docs = [self._doc({**{c: entry.get(c) for c in COLUMNS if c not in ("at", "outcome")},
                           "action": "request", "outcome": entry["status"], "detail": None,
                           "district_id": districts.get(entry.get("org_id"))},
                          at=entry.get("at"),
                          record_id=f"aud_{entry['entry_id']}" if entry.get("entry_id")
                          else None)
                for entry in entries]
        if not docs:
            return 0
        try:
            self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
        return len(docs)

    def _insert(self, record: dict[str, Any], at: str | None = None) -> None:
        self.collection.insert_one(self._doc(record, at))

    def _districts(self, org_ids: set[str]) -> dict[str, str | None]:
        """Each organisation's district (`Organisations.district_of`), in one read for a
        whole batch: the gateway's records were one read each, one per request answered."""
        if not org_ids:
            return {}
        found = self.organisations.collection.find({"_id": {"$in": sorted(org_ids)}},
                                                   {"kind": 1, "district_id": 1})
        return {doc["_id"]: doc["_id"] if doc["kind"] == "district" else doc.get("district_id")
                for doc in found}

    def _doc(self, record: dict[str, Any], at: str | None = None,
             record_id: str | None = None) -> dict[str, Any]:
        """The stored record; its district read now unless `record` already names it."""
        at = at or clock.stamp()
        record_id = record_id or new_id("aud")
        district = (record["district_id"] if "district_id" in record
                    else self.organisations.district_of(record.get("org_id")))
        return {**record, "_id": record_id, "at": at, "key": sort_key(at, record_id),
                "district_id": district, "expires_at": clock.expiry(self.retention)}

    # -- reading ---------------------------------------------------------------------------
    def query(self, q: dict[str, Any], actor: Actor) -> dict[str, Any]:
        rows, after = page(self.collection, self._filter(q, actor), q["limit"], q["cursor"],
                           HIDDEN)
        return {"items": [{k: v for k, v in r.items() if k != "key"} for r in rows],
                "next_cursor": after}

    def export_csv(self, q: dict[str, Any], actor: Actor) -> str:
        """Every matching record as CSV (cells guarded against formulas), oldest first."""
        flt = self._filter(q, actor)
        rows = list(self.collection.find(flt, HIDDEN).sort("key", 1).limit(EXPORT_MAX + 1))
        if len(rows) > EXPORT_MAX:
            raise ValidationFailed(
                f"more than {EXPORT_MAX} records match; narrow from/to",
                {"to": [f"more than {EXPORT_MAX} records match; narrow the time range"]},
                code="export-too-large")
        return write_csv(COLUMNS, ([row.get(c) for c in COLUMNS] for row in rows))

    def _filter(self, q: dict[str, Any], actor: Actor) -> dict[str, Any]:
        flt: dict[str, Any] = {name: q[name] for name in ("user_id", "org_id", "action",
                                                          "resource_id") if q.get(name)}
        scope = self._scope(actor)
        flt.update(scope)
        asked = q.get("org_id")
        outside = asked and (flt.get("org_id") != asked or (
            "district_id" in scope and asked != actor.org
            and self.organisations.district_of(asked) != actor.org))
        if outside:
            raise Forbidden("that organisation's records are not yours to read",
                            code="audit-forbidden")
        bound: dict[str, str] = {}
        if q.get("from_"):
            bound["$gte"] = sort_key(q["from_"])
        if q.get("to"):
            bound["$lt"] = sort_key(q["to"])
        if bound:
            flt["key"] = bound
        return flt

    def _scope(self, actor: Actor) -> dict[str, Any]:
        if actor.is_admin:
            return {}
        if actor.role == "district" and actor.org:
            return {"district_id": actor.org}
        if actor.org and self.authority.manages(actor, actor.org):
            return {"org_id": actor.org}
        raise Forbidden("only admins, district staff and managers read the audit trail",
                        code="audit-forbidden")
