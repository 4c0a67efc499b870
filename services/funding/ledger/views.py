"""How postings, accounts and entries look to callers (contracts/funding.py views)."""

from __future__ import annotations

from typing import Any


def posting_view(doc: dict[str, Any]) -> dict[str, Any]:
    return {"posting_id": doc["_id"], "state": doc["state"], "kind": doc["kind"],
            "category": doc["category"], "district": doc["district"], "memo": doc.get("memo"),
            "created_at": doc["created_at"], "applied_at": doc.get("applied_at"),
            "entries": [{"account": e["account"], "amount_fen": int(e["amount"])}
                        for e in doc["entries"]],
            "total_fen": int(doc.get("total") or 0), "refusal": doc.get("refusal"),
            "reverses": doc.get("reverses"), "reversed_by": doc.get("reversed_by"),
            "refs": doc.get("refs"), "actor": doc.get("actor")}


def account_view(doc: dict[str, Any], balance: int | None = None, at: str | None = None
                 ) -> dict[str, Any]:
    return {"account_id": doc["_id"], "kind": doc["kind"], "district": doc["district"],
            "term": doc["term"], "source": doc.get("source"), "tutor_id": doc.get("tutor_id"),
            "name": doc.get("name"), "floor_fen": doc.get("floor"),
            "balance_fen": int(doc["balance"]) if balance is None else balance, "at": at}


def entry_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"entry_id": row["_id"], "account": row["account"], "amount_fen": int(row["amount"]),
            "balance_after_fen": int(row["balance_after"]), "at": row["at"],
            "posting_id": row["posting_id"], "kind": row["kind"], "category": row["category"],
            "memo": row.get("memo")}
