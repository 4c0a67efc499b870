"""Bearer access tokens: HS256 JWTs identity issues at sign-in (docs/identity.md).

Claims: `sub` (the user id), `role`, `org` (absent for admins), `iss` "kepu", `aud`
"kepu-api", a unique `jti`, `iat`, `exp`. The gateway verifies them locally on every request
(`verify`: no RPC); per-user cut-offs (gateway/revocations.py) refuse older tokens early.

`mint` is the operator's path (`kepu token`) and the tests': the same claims, signed with
the same secret, at most `MAX_MINTED` long.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import jwt

ROLES = ("admin", "district", "finance", "venue", "school")
NEEDS_ORG = ("venue", "school", "district")
ISSUER = "kepu"
AUDIENCE = "kepu-api"
LEEWAY_S = 5  # clock skew between replicas, and a token minted in the second of a cut-off
MAX_MINTED = timedelta(hours=24)
REQUIRED = ["sub", "role", "aud", "iss", "jti", "iat", "exp"]


class InvalidToken(Exception):
    """Missing, malformed, expired or forged."""


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str
    org: str | None
    issued_at: int = field(default=0, compare=False)
    api_key_id: str | None = None  # set when the caller presented an API key

    def owns(self, org_id: str | None) -> bool:
        return self.role == "admin" or (org_id is not None and self.org == org_id)

    def as_dict(self) -> dict[str, str | None]:
        return {"sub": self.sub, "role": self.role, "org": self.org}


def mint(secret: str, role: str, org: str | None = None, sub: str | None = None,
         ttl: timedelta = timedelta(hours=12), jti: str | None = None) -> str:
    """An access token for operators and tests; its lifetime is capped at 24 hours."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role in NEEDS_ORG and not org:
        raise ValueError(f"a {role} token needs --org")
    if ttl > MAX_MINTED:
        raise ValueError("a minted token lives at most 24 hours")
    now = datetime.now(UTC)
    claims = {"sub": sub or f"{role}-{uuid.uuid4().hex[:8]}", "role": role, "iss": ISSUER,
              "aud": AUDIENCE, "jti": jti or uuid.uuid4().hex, "iat": now, "exp": now + ttl}
    if org:
        claims["org"] = org
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: str, token: str) -> Principal:
    """The principal a token names, if its signature, issuer, audience and times hold."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                            audience=AUDIENCE, leeway=LEEWAY_S,
                            options={"require": REQUIRED})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    role = claims.get("role")
    if role not in ROLES:
        raise InvalidToken("unknown role")
    if role in NEEDS_ORG and not claims.get("org"):
        raise InvalidToken("token has no org")
    if not isinstance(claims["iat"], int | float):
        raise InvalidToken("iat is not a number")
    return Principal(sub=str(claims["sub"]), role=role, org=claims.get("org"),
                     issued_at=int(claims["iat"]))
