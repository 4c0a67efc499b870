"""Who is calling: a bearer access token verified locally, or an API key asked of identity.

- **Access tokens** (JWT, `kit.auth.verify`): signature, issuer, audience, expiry and the
  required claims are checked in process — no RPC per request. A verified token is kept
  (`TokenCache`) until its `exp`, so a client's later requests with it skip the signature
  and claim checks (a third of the gateway's own CPU per claim before); once `exp` has
  passed it is verified in full again (and refused past the leeway). Then, every time, the
  per-user cut-off: a token whose `iat` is before the user's latest `not_before` is refused
  (`Cutoffs`).
- **API keys** (`Bearer kepu_…`): `identity.verify_api_key(raw)` answers the key's
  organisation and role; the answer is cached for at most `KEY_CACHE_S` (by the key's
  SHA-256, never the raw key) and dropped at once on `identity.api_key_revoked`.

`Cutoffs` and `KeyCache` are fed by `revocations.Listener` (events) and by
`identity.recent_cutoffs()` at start and after every reconnect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
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
TOKEN_CACHE_MAX = 10_000


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


class TokenCache:
    """Access tokens already verified, until their `exp` (epoch seconds).

    Keyed by the token's SHA-256, never the token. A token only ever enters after
    `auth.verify` accepted it, and is answered from here only while `time() < exp`: the
    same answer a full verification would give. Bounded: past `TOKEN_CACHE_MAX` tokens
    the cache starts again empty. Plain dict operations, atomic under the GIL, so the
    worker's threads share it without a lock.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.now = now
        self._tokens: dict[bytes, tuple[float, Principal]] = {}

    def get(self, token: str) -> Principal | None:
        hit = self._tokens.get(hashlib.sha256(token.encode()).digest())
        if hit is None or self.now() >= hit[0]:
            return None
        return hit[1]

    def put(self, token: str, principal: Principal) -> None:
        exp = _expiry(token)
        if exp is None:
            return
        if len(self._tokens) >= TOKEN_CACHE_MAX:
            self._tokens.clear()
        self._tokens[hashlib.sha256(token.encode()).digest()] = (exp, principal)

    def __len__(self) -> int:
        return len(self._tokens)


def _expiry(token: str) -> float | None:
    """The `exp` of a token whose signature was already checked (None if unreadable)."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        exp = claims["exp"]
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


class Verifier:
    """Turns an Authorization bearer value into a Principal, or raises Unauthenticated."""

    def __init__(self, secret: str, ask_key: Callable[[str], dict[str, Any]],
                 cutoffs: Cutoffs | None = None, keys: KeyCache | None = None,
                 tokens: TokenCache | None = None) -> None:
        self.secret = secret
        self.ask_key = ask_key
        self.cutoffs = cutoffs or Cutoffs()
        self.keys = keys or KeyCache()
        self.tokens = tokens if tokens is not None else TokenCache()

    def __call__(self, token: str) -> Principal:
        if token.startswith(API_KEY_PREFIX):
            return self.api_key(token)
        return self.access_token(token)

    def access_token(self, token: str) -> Principal:
        principal = self.tokens.get(token)
        if principal is None:
            try:
                principal = auth.verify(self.secret, token)
            except auth.InvalidToken as exc:
                raise Unauthenticated(f"invalid token: {exc}", code="token-invalid") from None
            self.tokens.put(token, principal)
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
