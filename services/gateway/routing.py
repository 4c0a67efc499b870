"""How an HTTP route is declared: path, roles, schemas, and the handler that calls RPC.

    @route("POST", "/v1/venues", roles=("admin",), body=VenueRegistration,
           response=Venue, status=201, creates=True)
    def register_venue(call: Call) -> dict: return call.rpc.venues.register_venue(call.body)

Schemas declared here drive validation and the OpenAPI document alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema
from werkzeug.wrappers import Request

from services.kit.actor import SIGNED_TTL_S, Actor, sign
from services.kit.auth import Principal
from services.kit.rpc_client import RpcClient

REUSE_S = 10  # a signature is handed out for this long, so it has >= 50 s left when sent
SIGNED_MAX = 10_000


class ActorSigner:
    """Signs principals as actors (kit.actor), reusing one signature for `REUSE_S`.

    A busy school's requests then share one HMAC instead of one each; every signature
    still leaves with at least `SIGNED_TTL_S - REUSE_S` seconds to live, more than the RPC
    timeout. Keyed by (sub, role, org): exactly what the signature covers.
    """

    def __init__(self, key: bytes, now: Callable[[], float] = time.time) -> None:
        self.key = key
        self.now = now
        self._signed: dict[tuple[str, str, str | None], tuple[float, dict[str, Any]]] = {}

    def __call__(self, principal: Principal) -> dict[str, Any]:
        who = (principal.sub, principal.role, principal.org)
        now = self.now()
        hit = self._signed.get(who)
        if hit is not None and now < hit[0]:
            return dict(hit[1])
        signed = sign(Actor(sub=principal.sub, role=principal.role, org=principal.org),
                      self.key, SIGNED_TTL_S)
        if len(self._signed) >= SIGNED_MAX:
            self._signed.clear()
        self._signed[who] = (now + REUSE_S, signed)
        return dict(signed)


@dataclass
class Call:
    """Everything a handler may use: who asks, what they sent, and the RPC client."""

    principal: Principal | None
    rpc: RpcClient
    request: Request
    path: dict[str, str]
    query: dict[str, Any]
    body: Any  # the JSON body as sent, checked against the route's schema (here, or first
    # thing in the service for `Route.service_loads` routes)
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    actor_key: bytes = field(default=b"", repr=False)
    client_address: str | None = None  # as the throttle sees it (KEPU_TRUSTED_PROXIES)
    signer: ActorSigner | None = field(default=None, repr=False)

    @property
    def actor(self) -> dict[str, Any] | None:
        """The principal as services receive it: signed, so they can verify it (kit.actor)."""
        if self.principal is None:
            return None
        if self.signer is not None:
            return self.signer(self.principal)
        p = self.principal
        return sign(Actor(sub=p.sub, role=p.role, org=p.org), self.actor_key)

    @property
    def client(self) -> dict[str, Any]:
        """Where a public call came from, for identity's throttle and audit (`Client`)."""
        agent = self.request.headers.get("User-Agent") or None
        return {"address": (self.client_address or "")[:64] or None,
                "user_agent": agent[:300] if agent else None}

    @property
    def request_key(self) -> str | None:
        """The `Idempotency-Key` a creating call passes on, so its service binds it."""
        key = self.request.headers.get("Idempotency-Key")
        return key.strip() if key and key.strip() else None


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[Call], Any]
    roles: tuple[str, ...] | None  # None: public (no token)
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    many: bool = False
    status: int = 200
    creates: bool = False
    summary: str = ""
    tag: str = ""
    content_types: tuple[str, ...] = ("application/json",)
    max_body: int | None = None
    raw_response: bool = False
    # the answer holds a secret shown once (a new API key): never kept in the gateway's
    # idempotency record; the service binds the Idempotency-Key itself
    secret_response: bool = False
    # the service answers a repeated Idempotency-Key itself — the same status, body and
    # Location, resolving concurrent repeats, refusing the key with another body — so the
    # gateway keeps no record of its own (2 database commands saved per request); it still
    # checks the key's shape
    binds_key: bool = False
    # the service loads `body` with the same schema before it does anything else (its
    # refusal is the same 422, field by field), so the gateway skips its own load and only
    # checks the JSON itself (body.parse_json): a marshmallow load saved per request
    service_loads: bool = False
    description: str = ""


ROUTES: list[Route] = []


def route(method: str, path: str, *, roles: tuple[str, ...] | None, tag: str,
          **options: Any) -> Callable[[Callable[[Call], Any]], Callable[[Call], Any]]:
    def register(handler: Callable[[Call], Any]) -> Callable[[Call], Any]:
        doc = (handler.__doc__ or "").strip()
        summary = options.pop("summary", None) or doc.split("\n")[0]
        description = options.pop("description", None) or " ".join(
            line.strip() for line in doc.split("\n")[1:]).strip()
        ROUTES.append(Route(method, path, handler, roles, summary=summary, tag=tag,
                            description=description, **options))
        return handler

    return register
