"""How an HTTP route is declared: path, roles, schemas, and the handler that calls RPC.

    @route("POST", "/v1/venues", roles=("admin",), body=VenueRegistration,
           response=Venue, status=201, creates=True)
    def register_venue(call: Call) -> dict: return call.rpc.venues.register_venue(call.body)

Schemas declared here drive validation and the OpenAPI document alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema
from werkzeug.wrappers import Request

from services.kit.actor import Actor, sign
from services.kit.auth import Principal
from services.kit.rpc_client import RpcClient


@dataclass
class Call:
    """Everything a handler may use: who asks, what they sent, and the RPC client."""

    principal: Principal | None
    rpc: RpcClient
    request: Request
    path: dict[str, str]
    query: dict[str, Any]
    body: Any  # the JSON body, checked against the route's schema, as sent
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    actor_key: bytes = field(default=b"", repr=False)
    client_address: str | None = None  # as the throttle sees it (KEPU_TRUSTED_PROXIES)

    @property
    def actor(self) -> dict[str, Any] | None:
        """The principal as services receive it: signed, so they can verify it (kit.actor)."""
        if self.principal is None:
            return None
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
