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


def _schema_name(schema: Any) -> str:
    return resolve_schema_cls(schema).__name__


def build_spec(routes: list[Route]) -> dict[str, Any]:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title="Kepu API", version="1.0.0", openapi_version="3.1.0",
                   plugins=[plugin],
                   info={"description": "Schools and science venues for after-school "
                                        "programmes (课后服务)."})
    plugin.map_to_openapi_type(Instant, "string", "date-time")
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"})
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
        if r.roles is not None:
            op["security"] = [{"bearer": []}]
            op["description"] = f"Roles: {', '.join(r.roles)}."
        paths.setdefault(path, {})[r.method.lower()] = op
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()
