"""Opaque secrets handed out once and kept only as a digest: refresh tokens, invitation
and reset links, API keys.

Each carries 256 random bits, so a plain SHA-256 digest is enough to store (nothing to
guess, unlike a password: no slow hash needed), and a stolen database holds nothing that
signs anyone in. Lookups go by digest, so comparing is the database's equality match.
"""

from __future__ import annotations

import hashlib
import secrets

SECRET_BYTES = 32


def new_secret() -> str:
    """43 URL-safe characters of fresh randomness."""
    return secrets.token_urlsafe(SECRET_BYTES)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
