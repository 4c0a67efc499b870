"""`Idempotency-Key` for POSTs that create: a repeat gets the first answer.

The record is kept per caller (token subject and org) and key, for 48 hours (`KEEP`):
longer than any client retries. The same key with another body is refused (422); a repeat
while the first is still running gets 409; a server error or a lost upstream call is not
remembered, so the client may try again with the same key — the service binds the key too
(kit.request_keys), so that retry never creates a second record. A record left `running`
by a crashed gateway is taken over once its lease has passed.

Routes whose service answers repeats itself (`Route.binds_key`: a claim, a tutor visit)
keep no record here, which saves its insert and update per request: the gateway checks the
key's shape (`checked_key`) and passes it on, and answers the service's refusal of a
reused key with this module's own problem (`key_reused`).

`expires_at` is a BSON datetime under a TTL index (MongoDB deletes expired records
itself); the sweep stays for servers that do not run a TTL monitor, and a record read
after its expiry counts as absent either way.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.gateway.problems import Problem
from services.kit import clock

KEEP = timedelta(hours=48)
LEASE_S = 90
MAX_KEY = 200


@dataclass
class Stored:
    status: int
    body: Any
    headers: dict[str, str]


KEY_REUSED = "idempotency-key-reused"
NOT_JSON = object()


def fingerprint(method: str, path: str, raw: bytes, data: Any = NOT_JSON) -> str:
    """A digest of the request: method, path and body. A JSON body counts by its content
    (`data`, as already parsed: other key order or whitespace is the same request), so it
    is dumped sorted, not parsed again; anything else (a CSV upload) by its bytes. The
    dump's options match older records', so a repeat across a deploy still matches."""
    body = raw if data is NOT_JSON else json.dumps(data, sort_keys=True,
                                                   ensure_ascii=False).encode()
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def checked_key(key: str) -> str:
    """The key as it is bound (stripped), or a 400 for one of the wrong length."""
    key = key.strip()
    if not key or len(key) > MAX_KEY:
        raise Problem(400, "Bad Idempotency-Key", f"1 to {MAX_KEY} characters",
                      {"Idempotency-Key": [f"must be 1 to {MAX_KEY} characters"]},
                      kind="idempotency-key")
    return key


def key_reused() -> Problem:
    """The refusal of a key sent again with another request: the same document whether
    this record or the service's binding noticed it."""
    return Problem(422, "Idempotency-Key reused",
                   "this Idempotency-Key was used with a different request",
                   {"Idempotency-Key": ["already used with a different request body"]},
                   kind=KEY_REUSED)


class IdempotencyKeys:
    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self._swept = 0.0

    def ensure_indexes(self) -> None:
        self.collection.create_index("expires_at", expireAfterSeconds=0)

    def begin(self, scope: str, key: str, print_: str, again: bool = True) -> Stored | None:
        """None: this request runs. A Stored: answer with it. Raises the 409/422 problems."""
        key = checked_key(key)
        self.sweep()
        now = clock.stamp()
        doc_id = f"{scope}|{key}"
        try:
            self.collection.insert_one({"_id": doc_id, "fingerprint": print_, "state": "running",
                                        "lease_until": clock.later(LEASE_S),
                                        "expires_at": clock.expiry(KEEP)})
            return None
        except DuplicateKeyError:
            pass
        doc = self.collection.find_one({"_id": doc_id})
        if (doc is None or _expired(doc)) and again:
            if doc is not None:
                self.collection.delete_one({"_id": doc_id, "expires_at": doc["expires_at"]})
            return self.begin(scope, key, print_, again=False)
        if doc is None or _expired(doc):
            raise Problem(409, "Request in progress", "try again", kind="idempotency-in-flight",
                          headers={"Retry-After": "1"})
        if doc["fingerprint"] != print_:
            raise key_reused()
        if doc["state"] == "done":
            return Stored(doc["status"], doc["body"], doc.get("headers") or {})
        if doc["lease_until"] < now:
            taken = self.collection.find_one_and_update(
                {"_id": doc_id, "state": "running", "lease_until": doc["lease_until"]},
                {"$set": {"lease_until": clock.later(LEASE_S)}})
            if taken is not None:
                return None
        raise Problem(409, "Request in progress",
                      "a request with this Idempotency-Key is still being processed",
                      kind="idempotency-in-flight", headers={"Retry-After": "1"})

    def complete(self, scope: str, key: str, stored: Stored) -> None:
        self.collection.update_one(
            {"_id": f"{scope}|{key}"},
            {"$set": {"state": "done", "status": stored.status, "body": stored.body,
                      "headers": stored.headers}, "$unset": {"lease_until": ""}})

    def forget(self, scope: str, key: str) -> None:
        self.collection.delete_one({"_id": f"{scope}|{key}", "state": "running"})

    def sweep(self) -> None:
        """Delete expired keys, at most once a minute per process."""
        if time.monotonic() - self._swept < 60:
            return
        self._swept = time.monotonic()
        self.collection.delete_many({"expires_at": {"$lt": datetime.now(UTC)}})


def _expired(doc: dict[str, Any]) -> bool:
    """Past its `expires_at` by the real clock (the one a TTL monitor uses).

    Records written before `expires_at` became a datetime hold a stamp string.
    """
    expires = doc.get("expires_at")
    if isinstance(expires, str):
        try:
            expires = clock.parse(expires)
        except ValueError:
            return True
    return not isinstance(expires, datetime) or expires < datetime.now(UTC)
