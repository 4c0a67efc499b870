"""Who is calling: a bearer access token verified locally, or an API key asked of identity.

- **Access tokens** (JWT, `kit.auth.verify`): signature, issuer, audience, expiry and the
  required claims are checked in process — no RPC per request. Then the per-user cut-off:
  a token whose `iat` is before the user's latest `not_before` is refused (`Cutoffs`).
- **API keys** (`Bearer kepu_…`): `identity.verify_api_key(raw)` answers the key's
  organisation and role; the answer is cached for at most `KEY_CACHE_S` (by the key's
  SHA-256, never the raw key) and dropped at once on `identity.api_key_revoked`.

`Cutoffs` and `KeyCache` are fed by `revocations.Listener` (events) and by
`identity.recent_cutoffs()` at start and after every reconnect.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from services.kit import auth
from services.kit.auth import Principal
from services.kit.errors import Unauthenticated

API_KEY_PREFIX = "kepu_"
KEY_CACHE_S = 30.0
CUTOFF_KEEP_S = 15 * 60 + 60  # one access-token lifetime (at most 15 min), and a margin
KEY_CACHE_MAX = 10_000


class Cutoffs:
    """user id → not-before (epoch seconds), forgotten once no token it refuses can live."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self._lock = threading.Lock()
        self._not_before: dict[str, int] = {}

    def add(self, user_id: str, not_before: int) -> None:
        with self._lock:
            if not_before > self._not_before.get(user_id, 0):
                self._not_before[user_id] = not_before
            if len(self._not_before) > 1000:
                self._forget_old()

    def _forget_old(self) -> None:
        horizon = self.now() - CUTOFF_KEEP_S
        for user_id in [u for u, nb in self._not_before.items() if nb < horizon]:
            del self._not_before[user_id]

    def refuses(self, user_id: str, issued_at: int) -> bool:
        return issued_at < self._not_before.get(user_id, 0)

    def __len__(self) -> int:
        return len(self._not_before)


class KeyCache:
    """Verified API keys, by digest, for a short while; revocations drop them by id."""

    def __init__(self, ttl_s: float = KEY_CACHE_S,
                 now: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.now = now
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, Principal]] = {}

    def get(self, digest: str) -> Principal | None:
        with self._lock:
            hit = self._keys.get(digest)
            if hit is None:
                return None
            if self.now() - hit[0] > self.ttl_s:
                del self._keys[digest]
                return None
            return hit[1]

    def put(self, digest: str, principal: Principal) -> None:
        with self._lock:
            if len(self._keys) >= KEY_CACHE_MAX:
                self._keys.clear()
            self._keys[digest] = (self.now(), principal)

    def drop(self, api_key_id: str) -> None:
        with self._lock:
            for digest in [d for d, (_, p) in self._keys.items() if p.api_key_id == api_key_id]:
                del self._keys[digest]

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


class Verifier:
    """Turns an Authorization bearer value into a Principal, or raises Unauthenticated."""

    def __init__(self, secret: str, ask_key: Callable[[str], dict[str, Any]],
                 cutoffs: Cutoffs | None = None, keys: KeyCache | None = None) -> None:
        self.secret = secret
        self.ask_key = ask_key
        self.cutoffs = cutoffs or Cutoffs()
        self.keys = keys or KeyCache()

    def __call__(self, token: str) -> Principal:
        if token.startswith(API_KEY_PREFIX):
            return self.api_key(token)
        return self.access_token(token)

    def access_token(self, token: str) -> Principal:
        try:
            principal = auth.verify(self.secret, token)
        except auth.InvalidToken as exc:
            raise Unauthenticated(f"invalid token: {exc}", code="token-invalid") from None
        if self.cutoffs.refuses(principal.sub, principal.issued_at):
            raise Unauthenticated("this sign-in has ended; sign in again",
                                  code="token-revoked")
        return principal

    def api_key(self, raw: str) -> Principal:
        digest = hashlib.sha256(raw.encode()).hexdigest()
        cached = self.keys.get(digest)
        if cached is not None:
            return cached
        answer = self.ask_key(raw)  # Unauthenticated crosses RPC intact
        principal = Principal(sub=answer["sub"], role=answer["role"], org=answer["org"],
                              api_key_id=answer["api_key_id"])
        self.keys.put(digest, principal)
        return principal
