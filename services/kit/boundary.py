"""Loading payloads at a boundary: marshmallow errors become a named ValidationFailed."""

from __future__ import annotations

from functools import cache
from typing import Any

from marshmallow import Schema, ValidationError

from services.kit.errors import ValidationFailed
from services.kit.logs import clip


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Nested marshmallow messages → {"groups.0.students": ["..."]}: one key per field."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "_schema"
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                out.setdefault(name, []).extend(value)
            else:
                for k, v in _flatten(value, name).items():
                    out.setdefault(k, []).extend(v)
    elif isinstance(messages, list):
        out.setdefault(prefix or "_schema", []).extend(str(m) for m in messages)
    else:
        out.setdefault(prefix or "_schema", []).append(str(messages))
    return out


@cache
def shared(schema: type[Schema]) -> Schema:
    """One instance per schema class: building one deep-copies every declared field, which
    cost more than the load itself on the claim path. Instances keep no per-call state."""
    return schema()


FIELDS_SHOWN = 50  # bad fields one refusal names; the rest are counted
FIELD_NAME_MAX = 80  # an unknown field's name is the client's text: echoed clipped


def _shown(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The errors as a refusal may echo them: names clipped, at most FIELDS_SHOWN of them."""
    shown: dict[str, list[str]] = {}
    for name in sorted(errors)[:FIELDS_SHOWN]:
        shown.setdefault(clip(name, FIELD_NAME_MAX), []).extend(errors[name])
    if len(errors) > FIELDS_SHOWN:
        shown["_more"] = [f"{len(errors) - FIELDS_SHOWN} more invalid fields"]
    return shown


def load(schema: Schema | type[Schema], data: Any, **kwargs: Any) -> Any:
    """Validate and deserialise `data`, or raise ValidationFailed naming each bad field."""
    instance = shared(schema) if isinstance(schema, type) else schema
    try:
        return instance.load(data, **kwargs)
    except ValidationError as exc:
        errors = _shown(_flatten(exc.messages))
        fields = ", ".join(errors)
        raise ValidationFailed(f"invalid fields: {fields}", errors) from None


def dump(schema: Schema | type[Schema], obj: Any, **kwargs: Any) -> Any:
    instance = shared(schema) if isinstance(schema, type) else schema
    return instance.dump(obj, **kwargs)
