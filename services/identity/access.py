"""Access tokens: the short-lived JWT the gateway verifies locally on every request.

HS256 under the platform secret, with `sub` (user id), `role`, `org`, `aud` "kepu-api",
`iss` "kepu", a unique `jti`, `iat`, `exp` (at most 15 minutes later) and `sid` (the
sign-in's refresh family). The gateway checks the signature, issuer, audience and expiry,
then refuses a token whose `iat` is before the user's latest cut-off (identity.user_cutoff).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import jwt

from services.identity.policy import Policy


def mint(secret: str, policy: Policy, user_id: str, role: str, org: str | None,
         issued_at: int, family_id: str) -> tuple[str, int]:
    """(token, seconds it lives)."""
    ttl = int(policy.access_ttl.total_seconds())
    claims: dict[str, Any] = {
        "sub": user_id, "role": role, "aud": policy.audience, "iss": policy.issuer,
        "jti": uuid.uuid4().hex, "iat": issued_at, "exp": issued_at + ttl, "sid": family_id}
    if org:
        claims["org"] = org
    return jwt.encode(claims, secret, algorithm="HS256"), ttl


def read(secret: str, policy: Policy, token: str, now: datetime | None = None,
         leeway_s: int = 5) -> dict[str, Any]:
    """The claims of a token this service minted (how the gateway will verify one).

    `leeway_s` absorbs clock skew between replicas, and a token minted in the second of
    a cut-off (its `iat` is the cut-off, at most one second ahead).
    """
    options = {"require": ["sub", "role", "aud", "iss", "jti", "iat", "exp"]}
    if now is not None:
        options["verify_exp"] = False
        options["verify_iat"] = False
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience=policy.audience,
                        issuer=policy.issuer, leeway=leeway_s, options=options)
    if now is not None and claims["exp"] + leeway_s < now.astimezone(UTC).timestamp():
        raise jwt.ExpiredSignatureError("Signature has expired")
    return claims
