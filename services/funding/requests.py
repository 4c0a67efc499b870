"""A finance user's Idempotency-Key, bound to what their request creates.

The gateway forgets a key when the call to funding fails or times out, so the client may
retry while the first attempt goes on (or has finished). Each creating call therefore
binds the key here (kit.request_keys: one namespace per kind, scoped to the district and
user as the gateway scopes it, kept 7 days) before it writes, and the retry finds the
same posting, rate card, payout run or statement instead of making a second one. The same
key sent with a different request is refused (422, `idempotency-key-reused`).
"""

from __future__ import annotations

from typing import Any

from services.kit.request_keys import RequestKeys, fingerprint

KINDS = ("funding", "transfer", "reversal", "rate_card", "payout_run", "statement")


class Requests:
    def __init__(self, keys: RequestKeys) -> None:
        self.keys = keys

    def ensure_indexes(self) -> None:
        self.keys.ensure_indexes()

    def bind(self, kind: str, district: str, sub: str, key: str | None, target: str,
             request: Any) -> str:
        """The id this request creates: `target`, or what the first use of `key` chose."""
        if key is None:
            return target
        if kind not in KINDS:  # pragma: no cover - a programming error
            raise ValueError(f"unknown request kind {kind!r}")
        return self.keys.bind(f"funding.{kind}", f"{district}|{sub}", key, target,
                              fingerprint(request))
