"""The WSGI application: routing, auth, body limits, rate limits, validation, idempotency,
problems.

The RPC client, the MongoDB client, the idempotency store and the throttle are built from
Settings unless passed in, so unit tests run the whole app with werkzeug's test client and
a fake RPC (services/gateway/tests).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from services.gateway import health
from services.gateway.audit_trail import STATE_CHANGING, AuditTrail
from services.gateway.body import parse_json
from services.gateway.downloads import unsendable_headers
from services.gateway.idempotency import (
    KEY_REUSED,
    NOT_JSON,
    IdempotencyKeys,
    Stored,
    checked_key,
    fingerprint,
    key_reused,
)
from services.gateway.limits import DEFAULT_MAX_BODY
from services.gateway.openapi import build_spec
from services.gateway.principals import Verifier
from services.gateway.problems import (
    PROBLEM_JSON,
    Problem,
    forbidden,
    problem_response,
    unauthorized,
)
from services.gateway.revocations import Listener
from services.gateway.routes import all_routes
from services.gateway.routing import ActorSigner, Call, Route
from services.gateway.throttle import (
    Throttle,
    client_address,
    group_of,
    parse_rates,
    trusted_networks,
)
from services.kit import auth
from services.kit import services as registry
from services.kit.actor import actor_key
from services.kit.boundary import load
from services.kit.config import Settings
from services.kit.errors import DomainError, Unauthenticated
from services.kit.logs import clip, correlation_id, new_correlation_id
from services.kit.mongo import connect
from services.kit.rpc_client import RpcClient

log = logging.getLogger("kepu.gateway")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_ID_SEGMENT = re.compile(r"^[a-z]{2,5}_[0-9a-f]{16}$|^[A-Za-z0-9_-]{1,24}$")
ROUTE_KEY = "kepu.route"  # the environ key holding the matched route's template
PRINCIPAL_KEY = "kepu.principal"  # ... the verified caller
ARGS_KEY = "kepu.path_args"  # ... the matched path's arguments
CLIENT_KEY = "kepu.client"  # ... the client address (KEPU_TRUSTED_PROXIES)
MATCHES_MAX = 4096


def loggable_path(environ: dict[str, Any], path: str) -> str:
    """What a log line may say about the request's path: the matched route's template
    (`/v1/consents/<token>`), else the path with anything token-like cut out. Never the
    query string: consent links and tokens travel in paths and queries."""
    template = environ.get(ROUTE_KEY)
    if template:
        return template
    parts = [p if _ID_SEGMENT.match(p) else "<redacted>" for p in path.split("/")]
    return clip("/".join(parts), 200)


class Gateway:
    def __init__(self, settings: Settings, max_body: int = DEFAULT_MAX_BODY, *,
                 rpc: Any = None, mongo: Any = None, keys: IdempotencyKeys | None = None,
                 throttle: Throttle | None = None, routes: list[Route] | None = None,
                 audit: AuditTrail | None = None) -> None:
        self.settings = settings
        real = rpc is None
        self.max_body = max_body
        self.rpc = rpc if rpc is not None else RpcClient(settings.amqp_url,
                                                         timeout=settings.rpc_timeout_s)
        self.mongo = mongo if mongo is not None else connect(settings, "gateway")
        self.actor_key = actor_key(settings.jwt_secret)
        self.signer = ActorSigner(self.actor_key)
        self.keys = keys or IdempotencyKeys(self.mongo[settings.database("gateway")].idempotency)
        self.throttle = throttle or Throttle(parse_rates(settings.rate_limits))
        self.trusted_proxies = trusted_networks(settings.trusted_proxies)
        self.ready = health.Readiness(self)
        self._indexed = threading.Event()
        self.routes = all_routes() if routes is None else list(routes)
        self.url_map = Map([Rule(r.path, endpoint=r, methods=[r.method]) for r in self.routes])
        self._matches: dict[tuple[str, str], tuple[Route, dict[str, str]]] = {}
        self._spec: dict[str, Any] | None = None
        self.verifier = Verifier(settings.jwt_secret,
                                 lambda raw: self.rpc.call("identity", "verify_api_key", raw))
        self.audit = audit or AuditTrail(
            lambda batch: self.rpc.call("identity", "record_requests", batch))
        self.listener: Listener | None = None
        if real and "identity" in registry.selected():  # a serving process with identity
            # (not unit tests' apps; a partial stack without identity has no cut-offs)
            self.listener = Listener(settings.amqp_url, self.verifier.cutoffs,
                                     self.verifier.keys,
                                     lambda: self.rpc.call("identity", "recent_cutoffs",
                                                           timeout=5)).start()
        if real:
            self.audit.start()

    def close(self) -> None:
        """Stop listening and flush the audit buffer (gunicorn's worker_exit)."""
        if self.listener is not None:
            self.listener.stop()
        self.audit.close()

    # -- WSGI -----------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        rid = request.headers.get("X-Request-Id", "")
        rid = rid if _REQUEST_ID.match(rid) else new_correlation_id()
        token = correlation_id.set(rid)
        try:
            response = self.dispatch(request)
        except DomainError as exc:
            response = problem_response(exc, rid)
        except Exception:
            log.exception("unhandled error on %s %s", request.method,
                          loggable_path(environ, request.path))
            response = problem_response(
                Problem(500, "Internal error", "the request failed; it was logged",
                        kind="internal"), rid)
        finally:
            correlation_id.reset(token)
        response.headers["X-Request-Id"] = rid
        if request.method in STATE_CHANGING and ROUTE_KEY in environ:
            self.record(environ, request.method, response, rid)
        return response(environ, start_response)

    def record(self, environ: dict[str, Any], method: str, response: Response,
               rid: str) -> None:
        """The audit record of a state-changing request, after it was answered."""
        principal: auth.Principal | None = environ.get(PRINCIPAL_KEY)
        args = environ.get(ARGS_KEY) or {}
        resource = next(reversed(args.values()), None) if args else None
        location = response.headers.get("Location")
        if resource is None and location:
            resource = location.rstrip("/").rsplit("/", 1)[-1]
        self.audit.record({
            "method": method, "route": environ[ROUTE_KEY],
            "resource_id": clip(str(resource), 200) if resource else None,
            "status": response.status_code,
            "user_id": None if principal is None or principal.api_key_id else principal.sub,
            "org_id": principal.org if principal else None,
            "role": principal.role if principal else None,
            "api_key_id": principal.api_key_id if principal else None,
            "request_id": rid, "client_address": (environ.get(CLIENT_KEY) or "")[:64] or None})

    def dispatch(self, request: Request) -> Response:
        if request.path == "/livez":
            status, body = health.live()
            return self.json(body, status)
        client = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                                self.trusted_proxies)
        request.environ[CLIENT_KEY] = client
        self.throttle.take(group_of(request.path), client)
        if request.path in ("/readyz", "/healthz"):
            status, body = self.ready()
            return self.json(body, status)
        if request.path == "/v1/openapi.json":
            if self._spec is None:
                self._spec = build_spec(self.routes)
            return self.json(self._spec)
        route, path_args = self.match(request)
        request.environ[ROUTE_KEY] = route.path
        request.environ[ARGS_KEY] = path_args
        return self.handle(route, path_args, request)

    def match(self, request: Request) -> tuple[Route, dict[str, str]]:
        """The route and path arguments of a request, or its 404/405 problem.

        Matches found are remembered by method and path (bounded, `MATCHES_MAX`): binding
        and matching the URL map was a tenth of the gateway's CPU on a claim."""
        seen = (request.method, request.path)
        hit = self._matches.get(seen)
        if hit is not None:
            return hit[0], dict(hit[1])
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            route, path_args = adapter.match()
        except MethodNotAllowed as exc:
            raise Problem(405, "Method not allowed", f"{request.method} is not allowed here",
                          headers={"Allow": ", ".join(exc.valid_methods or [])}) from None
        except NotFound:
            raise Problem(404, "Not found", f"no such resource: {clip(request.path)}",
                          kind="not-found") from None
        except HTTPException as exc:  # e.g. redirects for trailing slashes
            raise Problem(exc.code or 400, exc.name, exc.description or "") from None
        if len(self._matches) >= MATCHES_MAX:
            self._matches.clear()
        self._matches[seen] = (route, dict(path_args))
        return route, path_args

    # -- one API call ---------------------------------------------------------------------
    def authenticate(self, route: Route, request: Request) -> auth.Principal | None:
        if route.roles is None:
            return None
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("a bearer token is required")
        try:
            principal = self.verifier(token.strip())
        except Unauthenticated as exc:
            raise unauthorized(exc.detail, exc.code) from None
        request.environ[PRINCIPAL_KEY] = principal
        if principal.role not in route.roles:
            raise forbidden(f"role {principal.role!r} may not {route.method} {route.path}")
        return principal

    def read_body(self, route: Route, request: Request) -> Any:
        limit = route.max_body or self.max_body
        length = request.content_length
        if length is not None and length > limit:
            raise Problem(413, "Payload too large", f"the body is over {limit} bytes",
                          kind="payload-too-large")
        raw = request.stream.read(limit + 1)
        if len(raw) > limit:
            raise Problem(413, "Payload too large", f"the body is over {limit} bytes",
                          kind="payload-too-large")
        return raw

    def parse_body(self, route: Route, request: Request, raw: bytes) -> Any:
        mimetype = request.mimetype or "application/json"
        if route.body is None and "application/json" in route.content_types and not raw:
            return None
        if mimetype not in route.content_types:
            raise Problem(415, "Unsupported media type",
                          f"send one of: {', '.join(route.content_types)}",
                          kind="unsupported-media-type")
        if mimetype != "application/json":
            try:
                return {"content_type": mimetype, "text": raw.decode("utf-8-sig")}
            except UnicodeDecodeError:
                raise Problem(400, "Malformed body", "the body is not UTF-8",
                              kind="malformed-body") from None
        data = parse_json(raw)
        if route.body is None:
            return data
        if data is None:
            raise Problem(400, "Missing body", "this request needs a JSON body",
                          kind="malformed-json")
        if not route.service_loads:
            load(route.body, data)  # refuse bad input here; the service loads it again
        return data

    def handle(self, route: Route, path_args: dict[str, str], request: Request) -> Response:
        principal = self.authenticate(route, request)
        raw = self.read_body(route, request) if request.method in ("POST", "PUT", "PATCH") else b""
        body = self.parse_body(route, request, raw) if raw or route.body else None
        query = load(route.query, request.args.to_dict()) if route.query else {}
        call = Call(principal, self.rpc, request, path_args, query, body,
                    actor_key=self.actor_key, client_address=request.environ.get(CLIENT_KEY),
                    signer=self.signer)

        key = request.headers.get("Idempotency-Key")
        if not route.creates or key is None:
            return self.run(route, call)
        if route.binds_key:  # the service answers repeats: no record here
            checked_key(key)
            return self.run_bound(route, call)
        if principal is None or route.secret_response:
            return self.run(route, call)
        key = checked_key(key)
        scope = f"{principal.sub}|{principal.org or ''}"
        if not self._indexed.is_set():
            self.keys.ensure_indexes()
            self._indexed.set()
        is_json = bool(raw) and (request.mimetype or "application/json") == "application/json"
        print_ = fingerprint(request.method, request.path, raw, body if is_json else NOT_JSON)
        stored = self.keys.begin(scope, key, print_)
        if stored is not None:
            response = self.json(stored.body, stored.status, stored.headers)
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = self.run(route, call)
        except DomainError as exc:
            if exc.status >= 500:
                self.keys.forget(scope, key)
            else:
                self.keys.complete(scope, key, Stored(exc.status, exc.problem(),
                                                      {"Content-Type": PROBLEM_JSON}))
            raise
        except BaseException:
            self.keys.forget(scope, key)
            raise
        self.keys.complete(scope, key, Stored(response.status_code, response.json,
                                              dict(call.headers)))
        return response

    def run_bound(self, route: Route, call: Call) -> Response:
        """A route whose service binds the key: its refusal of a reused key is answered
        with the gateway's own problem document, as if the gateway had kept the record."""
        try:
            return self.run(route, call)
        except DomainError as exc:
            if exc.code == KEY_REUSED and exc.status == 422:
                raise key_reused() from None
            raise

    def run(self, route: Route, call: Call) -> Response:
        result = route.handler(call)
        if isinstance(result, Response):
            response = result
        else:
            status = route.status
            if isinstance(result, tuple):
                result, status = result
            response = self.json(result, status, call.headers)
        bad = unsendable_headers(response)
        if bad:  # the WSGI server would refuse them after we return, as a bare HTML 500
            raise RuntimeError(f"{route.path} answered unsendable headers: {bad}")
        return response

    @staticmethod
    def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        response = Response(json.dumps(body, ensure_ascii=False), status=status,
                            content_type="application/json")
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response


def create_app(settings: Settings | None = None) -> Gateway:
    return Gateway(settings or Settings.from_env())
