"""Bearer tokens: HS256 JWTs with `sub`, `role` and `org` (DESIGN.md, Public HTTP API)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ROLES = ("admin", "venue", "school", "finance")
ISSUER = "kepu"


class InvalidToken(Exception):
    """Missing, malformed, expired or forged."""


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str
    org: str | None

    def owns(self, org_id: str | None) -> bool:
        return self.role == "admin" or (org_id is not None and self.org == org_id)

    def as_dict(self) -> dict[str, str | None]:
        return {"sub": self.sub, "role": self.role, "org": self.org}


def mint(secret: str, role: str, org: str | None = None, sub: str | None = None,
         ttl: timedelta = timedelta(hours=12)) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role in ("venue", "school") and not org:
        raise ValueError(f"a {role} token needs --org")
    now = datetime.now(UTC)
    claims = {"sub": sub or f"{role}-{uuid.uuid4().hex[:8]}", "role": role, "iss": ISSUER,
              "iat": now, "exp": now + ttl}
    if org:
        claims["org"] = org
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], issuer=ISSUER,
                            options={"require": ["sub", "exp", "iat"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    role = claims.get("role")
    if role not in ROLES:
        raise InvalidToken("unknown role")
    if role in ("venue", "school") and not claims.get("org"):
        raise InvalidToken("token has no org")
    return Principal(sub=str(claims["sub"]), role=role, org=claims.get("org"))
