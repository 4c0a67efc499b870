"""Raw (non-JSON) answers: file downloads and the check every raw header passes.

A download's file name is built from path input (a district id, a term, a venue id), so it
may hold any character. A WSGI header value must be ISO-8859-1 without controls (gunicorn
refuses anything else after the app returned, outside the gateway's problem handler, as an
HTML 500). So the name goes out twice (RFC 6266): an ASCII `filename` fallback and the exact
name percent-encoded in `filename*`.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Response

# what gunicorn (and RFC 9110 field-value) accepts in a header value
_HEADER_VALUE = re.compile(r"[ \t\x21-\x7e\x80-\xff]*")
_UNSAFE_IN_FALLBACK = re.compile(r'[^\x20-\x7e]|["\\%]')


def attachment(name: str) -> str:
    """The Content-Disposition of a file called `name`, safe whatever `name` holds."""
    fallback = _UNSAFE_IN_FALLBACK.sub("_", name) or "download"
    exact = quote(name, safe="", errors="replace")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}"


def download(file: dict[str, Any]) -> Response:
    """A service's file ({filename, content_type, text | base64}) as a download."""
    body = base64.b64decode(file["base64"]) if "base64" in file else file["text"].encode()
    return Response(body, status=200, content_type=file["content_type"],
                    headers={"Content-Disposition": attachment(file["filename"])})


def unsendable_headers(response: Response) -> list[str]:
    """The names of headers a WSGI server would refuse (non-Latin-1 or control
    characters): the gateway turns these into its own problem instead of letting the
    server answer a bare HTML 500."""
    return [name for name, value in response.headers.items()
            if not _HEADER_VALUE.fullmatch(value)]
