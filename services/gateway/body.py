"""A request's JSON body, parsed into something every service can store and send on.

JSON allows what Kepu cannot carry further: a lone UTF-16 surrogate (`"\\ud800"`) decodes
into a Python string that no UTF-8 encoder accepts (the RPC to the service failed: a 500);
a NUL in a member name is not a valid MongoDB field name; `NaN` and `Infinity` are not
JSON numbers at all, though Python's parser takes them. Each is refused here with a 4xx
naming the field, before the body is validated or sent anywhere.
"""

from __future__ import annotations

import json
import re
from typing import Any

from services.gateway.limits import MAX_DEPTH, too_deep
from services.gateway.problems import Problem
from services.kit.errors import ValidationFailed
from services.kit.logs import clip

_SURROGATE = re.compile("[\ud800-\udfff]")
# the only ways UTF-8 JSON spells a lone surrogate or a NUL; a false hit (an escaped
# backslash before `u0000`, an emoji's surrogate pair) only costs the full walk
_RISKY_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)")
NOT_UNICODE = "contains a lone surrogate: not valid Unicode text"
BAD_NAME = "field names may not contain NUL or a lone surrogate"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """The body as JSON, or a 400: malformed, or nested deeper than MAX_DEPTH; a 422 for text
    that is not Unicode.

    The depth is refused here, before anything recursive (json's own parser, marshmallow,
    the fingerprint) meets it: a RecursionError there was a 500.

    Both walks of the parsed value are skipped when the bytes alone prove them needless (a
    claim's body, nearly always): a value cannot nest deeper than it has `[` and `{`, and
    a lone surrogate or a NUL can only arrive as a `\\uD8..`-`\\uDF..` or `\\u0000` escape
    in UTF-8 — or in UTF-16/32, whose bytes hold NULs.
    """
    if not raw:
        return None
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        data, deep = None, True
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "Malformed JSON", f"the body is not valid JSON: {clip(exc, 120)}",
                      kind="malformed-json") from None
    else:
        deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and too_deep(data, MAX_DEPTH)
    if deep:
        raise Problem(400, "Malformed JSON",
                      f"the body is nested too deeply (more than {MAX_DEPTH} levels)",
                      kind="malformed-json")
    risky = b"\x00" in raw or _RISKY_ESCAPE.search(raw) is not None
    errors = text_errors(data) if risky else None
    if errors:
        raise ValidationFailed(f"invalid fields: {', '.join(sorted(errors))}", errors)
    return data


def text_errors(data: Any, path: str = "") -> dict[str, list[str]]:
    """{field path: [message]} for every string or member name that cannot travel on."""
    errors: dict[str, list[str]] = {}
    if isinstance(data, str):
        if _SURROGATE.search(data):
            errors[path or "_schema"] = [NOT_UNICODE]
    elif isinstance(data, dict):
        for key, value in data.items():
            name = f"{path}.{key}" if path else str(key)
            if "\x00" in key or _SURROGATE.search(key):
                errors[clip(_SURROGATE.sub("?", name.replace("\x00", "?")), 80)] = [BAD_NAME]
                continue
            errors.update(text_errors(value, name))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            errors.update(text_errors(value, f"{path}.{i}" if path else str(i)))
    return errors
