"""Request keys: a caller's `Idempotency-Key` bound, in the service, to what it created.

The gateway remembers answers too, but it forgets a key when the upstream call fails
(a timeout, a 5xx) so the client may retry; the service may have created the record all
the same. So every creating call passes its key on, and the service binds it here before
it writes: `bind` answers the id the first attempt chose, so the retry finds (or, after a
crash between bind and write, creates) that same record and never a second one.

Keys are namespaced by kind (`claim`, `batch`, `venue`, …) and by caller scope (the org),
so a key used for a claim and then for a batch binds two different records. They expire
after `KEEP`: a BSON datetime with a TTL index, so MongoDB removes them itself. The window
is far longer than any client's retries (the gateway keeps its answers 48 hours).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from services.kit import clock
from services.kit.errors import ValidationFailed
from services.kit.ids import new_id

KEEP = timedelta(days=7)
MAX_KEY = 200


def fingerprint(*request: Any) -> str:
    """A digest of a checked request (its kind, target and loaded payload), so the same key
    sent with another request is recognised."""
    text = json.dumps(request, sort_keys=True, default=str, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class RequestKeys:
    def __init__(self, collection: Collection) -> None:
        self.collection = collection

    def ensure_indexes(self) -> None:
        self.collection.create_index("expires_at", expireAfterSeconds=0)

    def bind(self, kind: str, scope: str, key: str, target: str,
             fingerprint: str | None = None) -> str:
        """The id bound to (kind, scope, key): `target` if this is the first use.

        The same key sent again with another request (a different `fingerprint`) is refused.
        """
        if not key or len(key) > MAX_KEY:
            raise ValidationFailed("Idempotency-Key must be 1 to 200 characters",
                                   {"Idempotency-Key": [f"must be 1 to {MAX_KEY} characters"]})
        doc_id = f"{kind}|{scope}|{key}"
        try:
            self.collection.insert_one({"_id": doc_id, "target": target,
                                        "fingerprint": fingerprint,
                                        "expires_at": clock.expiry(KEEP)})
            return target
        except DuplicateKeyError:
            pass
        doc = self.collection.find_one({"_id": doc_id}) or {}
        if fingerprint and doc.get("fingerprint") and doc["fingerprint"] != fingerprint:
            raise ValidationFailed(
                "this Idempotency-Key was used with a different request",
                {"Idempotency-Key": ["already used with a different request"]},
                code="idempotency-key-reused")
        return doc.get("target") or target

    def new_id(self, kind: str, prefix: str, scope: str, request_key: str | None,
               *request: Any) -> tuple[str, bool]:
        """The id to create under (`prefix_…`), and whether an earlier attempt chose it.

        Without a key every call is new; with one, the first attempt's id comes back, so a
        retry answers that record, or creates it if the first died before writing.
        """
        fresh = new_id(prefix)
        if not request_key:
            return fresh, False
        bound = self.bind(kind, scope, request_key, fresh, fingerprint(kind, *request))
        return bound, bound != fresh

    def bound(self, kind: str, scope: str, key: str) -> str | None:
        """The id already bound to (kind, scope, key), if any."""
        doc = self.collection.find_one({"_id": f"{kind}|{scope}|{key}"})
        return doc["target"] if doc else None


def insert_once(collection: Collection, doc: dict[str, Any],
                found: Callable[[str], dict[str, Any] | None]) -> dict[str, Any] | None:
    """Insert `doc`; None if it went in, else the record a racing attempt wrote first."""
    try:
        collection.insert_one(doc)
        return None
    except DuplicateKeyError:
        existing = found(doc["_id"])
        if existing is None:  # a duplicate on another unique index: not ours to hide
            raise
        return existing
