"""A claim is its own Idempotency-Key record.

With a key, the claim id is derived from (school, key): a retry, or a second copy sent at
the same moment, computes the same id, and the claims collection's unique `_id` lets one
insert win; the loser reads the winner and continues it. The claim stores a digest of the
checked request (`request_fingerprint`), so the same key sent with another request is
refused as before (`idempotency-key-reused`). That saves the separate request-key record
(an insert per claim) other kinds still use (`kit.request_keys`: batches, visits, schools).
Without a key, ids are random.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from services.kit.errors import ValidationFailed
from services.kit.ids import new_id
from services.kit.request_keys import MAX_KEY, fingerprint

DIGEST_CHARS = 26  # 130 bits of base32: `clm_` + 26 fits venues' key rule [A-Za-z0-9_-]{1,64}


def claim_id_for(school_id: str, request_key: str | None) -> str:
    """The claim's id: derived from (school, key) when there is a key, else random."""
    if not request_key:
        return new_id("clm")
    if len(request_key) > MAX_KEY:
        raise ValidationFailed("Idempotency-Key must be 1 to 200 characters",
                               {"Idempotency-Key": [f"must be 1 to {MAX_KEY} characters"]})
    digest = hashlib.sha256(f"claim|{school_id}|{request_key}".encode()).digest()
    return "clm_" + base64.b32encode(digest).decode("ascii").lower()[:DIGEST_CHARS]


def request_print(request: dict[str, Any], request_key: str | None) -> str | None:
    """The digest a keyed claim stores of its checked request (None without a key)."""
    return fingerprint("claim", request) if request_key else None


def same_request(existing: dict[str, Any], print_: str | None) -> None:
    """A claim found under a keyed id answers only the request that made it."""
    if existing.get("request_fingerprint") != print_:
        raise ValidationFailed(
            "this Idempotency-Key was used with a different request",
            {"Idempotency-Key": ["already used with a different request"]},
            code="idempotency-key-reused")
