"""Signed passes: what a verified mobile and a booking's manage link carry.

A pass is `base64url(json).base64url(hmac-sha256)` under a key derived from the
platform secret and the pass's purpose, so a verification pass never opens a booking and
a manage token never books. The mobile inside a verification pass goes back only to the
browser that proved it owns the number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from services.kit import clock
from services.kit.errors import Forbidden


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: str, purpose: str) -> bytes:
    return hmac.new(secret.encode(), f"kepu-admissions:{purpose}".encode(),
                    hashlib.sha256).digest()


def seal(secret: str, purpose: str, claims: dict[str, Any], ttl_s: int | None = None) -> str:
    """A pass for `purpose` carrying `claims`, expiring after `ttl_s` (None: never)."""
    body = dict(claims)
    if ttl_s is not None:
        body["exp"] = clock.later(ttl_s)
    raw = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    mac = _b64(hmac.new(_key(secret, purpose), raw.encode(), hashlib.sha256).digest())
    return f"{raw}.{mac}"


def open_pass(secret: str, purpose: str, token: Any) -> dict[str, Any]:
    """The claims of a sound, unexpired pass; Forbidden otherwise (never says which)."""
    refused = Forbidden("this link or pass is not valid or has expired", code="pass-invalid")
    # a pass is base64url: anything else is refused here, before compare_digest (which
    # raises TypeError on non-ASCII str, a 500 instead of the 403)
    if (not isinstance(token, str) or not token.isascii() or token.count(".") != 1
            or len(token) > 600):
        raise refused
    raw, mac = token.split(".")
    want = _b64(hmac.new(_key(secret, purpose), raw.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(want, mac):
        raise refused
    try:
        claims = json.loads(_unb64(raw))
    except ValueError:
        raise refused from None
    if not isinstance(claims, dict) or ("exp" in claims and claims["exp"] <= clock.stamp()):
        raise refused
    return claims


def household_of(secret: str, mobile: str) -> str:
    """A household's id: a keyed digest of its verified mobile (the number itself is never
    a key, an index or a log field)."""
    digest = hmac.new(_key(secret, "household"), mobile.encode(), hashlib.sha256).hexdigest()
    return f"hh_{digest[:32]}"


def mask_mobile(mobile: str | None) -> str | None:
    """138****1234, as every listing shows a number."""
    if not mobile:
        return None
    return f"{mobile[:3]}****{mobile[-4:]}"
