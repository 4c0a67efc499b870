"""Cursor pages over one sortable string key per document.

nx-27017 compares strings that start like a time stamp as times and gets the rest wrong,
so a key such as `2026-09-01T08:00:00.000000Z|p1` would not range-query; every key here
starts with `@`, which sorts the same and reads as plain text.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.collection import Collection

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def sort_key(*parts: Any) -> str:
    return "@" + "|".join(str(p) for p in parts)


def page(collection: Collection, flt: dict[str, Any], limit: int, cursor: str | None,
         projection: dict[str, Any] | None = None, key: str = "key"
         ) -> tuple[list[dict[str, Any]], str | None]:
    """One page in key order and the cursor of the next (None at the end)."""
    query = dict(flt)
    if cursor:
        query[key] = {**(query.get(key) or {}), "$gt": cursor}
    rows = list(collection.find(query, projection).sort(key, ASCENDING).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][key] if more and rows else None)
