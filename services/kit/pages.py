"""Cursor pages over one sortable string key per document: every list in Kepu pages this way.

A key is `@` + its parts joined by `|`, e.g. `sort_key(created_at, claim_id)`. Stamps are
fixed-width (kit.clock), so keys sort as their times do, and the id breaks ties. The `@`
matters on the stand-in: nx-27017 reads a string that *starts* like an ISO time as a time
(to the second) and compares those wrongly (kit/mongo.py, "nx-27017"); `@` makes every key
plain text on both servers.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.collection import Collection

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def sort_key(*parts: Any) -> str:
    """The key a document is listed by: its parts in order, e.g. (created_at, id)."""
    return "@" + "|".join(str(p) for p in parts)


def page(collection: Collection, flt: dict[str, Any], limit: int, cursor: str | None,
         projection: dict[str, Any] | None = None, key: str = "key", newest_first: bool = False
         ) -> tuple[list[dict[str, Any]], str | None]:
    """One page in key order (or reverse, `newest_first`) and the cursor of the next.

    Reads `limit + 1` documents to learn whether another page exists without a count. The
    next cursor is None at the end.
    """
    query = dict(flt)
    if cursor:
        bound = dict(query.get(key) or {})
        op, tighter = ("$lt", min) if newest_first else ("$gt", max)
        bound[op] = tighter(cursor, bound[op]) if op in bound else cursor
        query[key] = bound
    order = DESCENDING if newest_first else ASCENDING
    rows = list(collection.find(query, projection).sort(key, order).limit(limit + 1))
    return trim(rows, limit, key)


def trim(rows: list[dict[str, Any]], limit: int, key: str = "key"
         ) -> tuple[list[dict[str, Any]], str | None]:
    """The same cut for rows a caller fetched itself (`limit + 1` of them, in key order)."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][key] if more and rows else None)
