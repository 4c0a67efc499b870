"""The OpenAPI 3.1 document, generated from the route table and its marshmallow schemas."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

from services.contracts.common import Instant
from services.gateway.routing import Route

_PARAM = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")

PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {
            "type": "array", "items": {"type": "string"}}},
    },
    "required": ["type", "title", "status"],
}


DESCRIPTION = (
    "Schools and science venues for after-school programmes (课后服务).\n\n"
    "**Signing in.** People sign in with `POST /v1/auth/login` (e-mail or mainland "
    "mobile, and password) and send the access token as `Authorization: Bearer <token>`; "
    "it lives at most 15 minutes, then `POST /v1/auth/refresh` spends the refresh token "
    "for a new pair. Integrations use an organisation's API key the same way "
    "(`Bearer kepu_…`).\n\n"
    "**Roles.** `admin` (the platform), `district` and `finance` (a district's education "
    "bureau), `venue`, `school`. A person may hold several memberships and switch between "
    "them (`POST /v1/auth/switch`). Errors are `application/problem+json` naming the "
    "field; 401 means sign in again, 429 carries `Retry-After`.")


def _schema_name(schema: Any) -> str:
    return resolve_schema_cls(schema).__name__


def build_spec(routes: list[Route]) -> dict[str, Any]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title="Kepu API", version="1.0.0", openapi_version="3.1.0",
                   plugins=[plugin],
                   info={"description": DESCRIPTION})
    plugin.map_to_openapi_type(Instant, "string", "date-time")
    spec.components.security_scheme("bearer", {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "An access token from POST /v1/auth/login (or /refresh, /switch): "
                       "HS256, iss `kepu`, aud `kepu-api`, at most 15 minutes. Verified by "
                       "the gateway on every request; refused once its person is cut off "
                       "(removed, disabled, signed out everywhere)."})
    spec.components.security_scheme("apiKey", {
        "type": "http", "scheme": "bearer", "bearerFormat": "kepu_<prefix>_<secret>",
        "description": "An organisation's API key (POST /v1/api-keys), sent as "
                       "`Authorization: Bearer kepu_…`; it acts as its organisation with "
                       "its role. Revoked keys are refused within seconds."})
    spec.components.schema("Problem", PROBLEM)
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        path = _PARAM.sub(r"{\1}", r.path)
        op: dict[str, Any] = {"summary": r.summary, "tags": [r.tag] if r.tag else [],
                              "operationId": r.handler.__name__}
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in _PARAM.findall(r.path)]
        if r.query is not None:
            params.append({"in": "query", "schema": r.query})
        if r.creates:
            params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "maxLength": 200}})
        if params:
            op["parameters"] = params
        if r.body is not None:
            content = {ct: {"schema": r.body if ct == "application/json" else {"type": "string"}}
                       for ct in r.content_types}
            op["requestBody"] = {"required": True, "content": content}
        ok: dict[str, Any] = {"description": "OK"}
        if r.response is not None:
            item = r.response
            schema: Any = {"type": "array", "items": item} if r.many else item
            if r.many:
                schema = {"type": "object", "properties": {
                    "items": {"type": "array", "items": item},
                    "next_cursor": {"type": ["string", "null"]}}}
            ok["content"] = {"application/json": {"schema": schema}}
        problem = {"description": "Problem", "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        op["responses"] = {str(r.status): ok, "default": problem}
        roles = ("Public: no token." if r.roles is None
                 else f"Roles: {', '.join(r.roles)}.")
        op["description"] = f"{r.description} {roles}".strip()
        if r.roles is not None:
            op["security"] = [{"bearer": []}, {"apiKey": []}]
        else:
            op["security"] = []
        paths.setdefault(path, {})[r.method.lower()] = op
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
