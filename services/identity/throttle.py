"""Brute-force limits on sign-in: per identifier and per client address, growing back-off.

After `free` failures in a window, each further failure locks the scope for twice as long
as the one before (1 s, 2 s, 4 s … up to `cap`); while locked, attempts are refused with
`TooManyRequests` and its `retry_after` *before* any password is checked, so a locked
account costs the server no argon2 work. A success clears the identifier's count (not the
address's: an attacker must not reset their address by signing in to their own account).

Counts live in MongoDB, so every gateway and identity replica sees the same ones. Each
scope is one document updated with `$inc`; its lock is set only by the update that saw
the newest count, so racing failures never shorten a lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.identity.errors import TooManyRequests
from services.kit import clock


@dataclass(frozen=True)
class Limit:
    free: int  # failures allowed in a window before any lock
    cap_s: int  # the longest lock
    window: timedelta = timedelta(days=1)  # a count starts afresh this long after its first
    base_s: int = 1


PER_IDENTIFIER = Limit(free=5, cap_s=15 * 60)
PER_ADDRESS = Limit(free=30, cap_s=60 * 60)
PER_RESET = Limit(free=3, cap_s=60 * 60)  # reset links sent to one identifier


def lock_seconds(limit: Limit, failures: int) -> int:
    """How long the `failures`-th failure locks the scope (0 while within `free`)."""
    over = failures - limit.free
    if over <= 0:
        return 0
    return min(limit.cap_s, limit.base_s * 2 ** min(over - 1, 30))


class Throttle:
    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        self.collection.create_index("expires_at", expireAfterSeconds=0)

    def check(self, *scopes: str) -> None:
        """TooManyRequests if any scope is locked now, with the longest wait."""
        keys = [s for s in scopes if s]
        if not keys:
            return
        now = clock.stamp()
        wait = 0
        for doc in self.collection.find({"_id": {"$in": keys}}):
            if doc.get("until", "") <= now or doc.get("locked_until", "") <= now:
                continue
            left = clock.parse(doc["locked_until"]) - clock.now()
            wait = max(wait, math.ceil(left.total_seconds()))
        if wait > 0:
            raise TooManyRequests(f"too many attempts; try again in {wait} s",
                                  code="too-many-attempts", retry_after=wait)

    def fail(self, scope: str | None, limit: Limit) -> int:
        """Count a failure; returns the lock it caused, in seconds (0 for none)."""
        if not scope:
            return 0
        failures = self._count(scope, limit)
        wait = lock_seconds(limit, failures)
        if wait:
            self.collection.update_one({"_id": scope, "failures": failures},
                                       {"$set": {"locked_until": clock.later(wait)}})
        return wait

    def clear(self, scope: str) -> None:
        self.collection.delete_one({"_id": scope})

    def _count(self, scope: str, limit: Limit) -> int:
        for _ in range(5):
            now = clock.stamp()
            doc = self.collection.find_one_and_update(
                {"_id": scope, "until": {"$gt": now}}, {"$inc": {"failures": 1}},
                return_document=ReturnDocument.AFTER)
            if doc is not None:
                return int(doc["failures"])
            self.collection.delete_one({"_id": scope, "until": {"$lte": now}})
            try:
                self.collection.insert_one(self._fresh(scope, limit))
                return 1
            except DuplicateKeyError:
                continue  # another replica started the window first: count in it
        return limit.free + 1  # contended beyond reason: count it as over the limit

    @staticmethod
    def _fresh(scope: str, limit: Limit) -> dict[str, Any]:
        return {"_id": scope, "failures": 1, "started_at": clock.stamp(),
                "until": clock.stamp(clock.now() + limit.window), "locked_until": "",
                "expires_at": clock.expiry(limit.window)}


def identifier_scope(kind: str, value: str) -> str:
    return f"id:{kind}:{value}"


def address_scope(address: str | None) -> str | None:
    return f"ip:{address}" if address else None


def reset_scope(kind: str, value: str) -> str:
    return f"reset:{kind}:{value}"
