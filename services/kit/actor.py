"""Who is acting: the person the gateway verified, as a service receives and checks it.

The gateway verifies the bearer token, then hands services a *signed* actor: the token's
`sub`, `role` and `org`, an expiry, and an HMAC-SHA256 over them under a key derived from
the platform secret (`KEPU_JWT_SECRET`). A service verifies the signature before any
ownership check, so a broker credential alone cannot act as an admin or as another
school. Service-to-service calls that act for nobody (holds, reads of sessions) carry no
actor; they trust the broker credential (docs/architecture.md, "The trust chain").

Domain code takes an `Actor`, never a dict: the role and ownership rules live here once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from nameko.extensions import DependencyProvider

from services.kit.errors import Forbidden

ROLES = ("admin", "district", "finance", "venue", "school")
ORG_ROLES = ("district", "finance", "venue", "school")  # roles that act for one organisation
# An actor outlives its request by at most this: longer than the RPC timeout (30 s) plus
# clock skew, short enough that one captured from broker traffic is soon worthless. The
# signature stops forging; replay within the minute needs read access to the broker's
# queues, which only the platform's own processes have (deploy/: per-service credentials
# and network policies).
SIGNED_TTL_S = 60
_CONTEXT = b"kepu-actor-v1"


@dataclass(frozen=True)
class Actor:
    """A verified person acting in one organisation with one role."""

    sub: str
    role: str
    org: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def name(self) -> str:
        """How history and audit entries name the actor: `school:usr_…`."""
        return f"{self.role}:{self.sub}"

    def owns(self, org_id: str | None) -> bool:
        """An admin owns everything; anyone else only their own organisation."""
        return self.is_admin or (org_id is not None and self.org == org_id)

    def require(self, *roles: str, detail: str | None = None) -> Actor:
        """This actor, if its role is one of `roles` (admin always passes); else Forbidden."""
        if self.is_admin or self.role in roles:
            return self
        raise Forbidden(detail or f"role {self.role!r} may not do this", code="role-forbidden")

    def org_as(self, role: str, detail: str | None = None) -> str:
        """The organisation this actor acts for as `role` (a school's id for `school`)."""
        if self.role != role or not self.org:
            raise Forbidden(detail or f"only {role} staff may do this", code="role-forbidden")
        return self.org

    def as_dict(self) -> dict[str, str | None]:
        return {"sub": self.sub, "role": self.role, "org": self.org}

    @classmethod
    def system(cls, what: str = "system") -> Actor:
        """The platform itself (timers, sweeps, event handlers): recorded, never verified."""
        return cls(sub=what, role="admin", org=None)


def actor_key(secret: str) -> bytes:
    """The signing key for actors, derived so it never equals the JWT signing key."""
    return hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()


def _mac(key: bytes, body: dict[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def sign(actor: Actor, key: bytes, ttl_s: int = SIGNED_TTL_S) -> dict[str, Any]:
    """The actor as it travels over RPC: its fields, an expiry and a signature."""
    body = {**actor.as_dict(), "exp": int(time.time()) + ttl_s}
    return {**body, "sig": _mac(key, body)}


def verify(data: Any, key: bytes) -> Actor:
    """The Actor `data` carries, if its signature holds and it has not expired; else Forbidden."""
    if not isinstance(data, dict) or not isinstance(data.get("sig"), str):
        raise Forbidden("the caller is not a verified actor", code="actor-unverified")
    body = {k: data.get(k) for k in ("sub", "role", "org", "exp")}
    if not data["sig"].isascii() or not hmac.compare_digest(_mac(key, body), data["sig"]):
        raise Forbidden("the caller is not a verified actor", code="actor-unverified")
    if not isinstance(body["exp"], int) or body["exp"] < time.time():
        raise Forbidden("the actor's signature has expired", code="actor-expired")
    if body["role"] not in ROLES or not isinstance(body["sub"], str):
        raise Forbidden("the caller is not a verified actor", code="actor-unverified")
    if body["role"] in ORG_ROLES and not body["org"]:
        raise Forbidden(f"a {body['role']} actor needs an organisation", code="actor-no-org")
    return Actor(sub=body["sub"], role=body["role"], org=body["org"] or None)


class Actors(DependencyProvider):
    """Injects `verify(data) -> Actor` bound to this stack's key: `self.actors(actor)`."""

    def setup(self) -> None:
        self.key = actor_key(self.container.config["KEPU_SETTINGS"].jwt_secret)

    def get_dependency(self, worker_ctx: Any) -> Any:
        key = self.key
        return lambda data: verify(data, key)
