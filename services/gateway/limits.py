"""How big (and how deeply nested) a request body the gateway takes, and which requests
end their connection.

A body the gateway answers without reading — refused as too large, or refused before it is
read (no token, wrong role, unknown route) — is left on the socket. gunicorn drains at most
64 KiB of it before giving up on the connection, yet it has already answered
`Connection: keep-alive`, so a client that reuses the connection loses its next request
("remote end closed connection without response"). A request whose body is declared over
what the server drains, or whose length is unknown (chunked), is therefore answered with
`Connection: close`: its client opens a fresh connection — one handshake after an upload,
while claims and other JSON requests (a few hundred bytes) keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

DEFAULT_MAX_BODY = 1 << 20
MAX_DEPTH = 32  # JSON nesting a body may have; Kepu's deepest payload uses 4
SERVER_DRAINS = 64 << 10  # gunicorn's _DRAIN_MAX_BYTES (http/parser.py)


def closes_connection(headers: Iterable[tuple[str, str]], drains: int = SERVER_DRAINS) -> bool:
    """True when the connection should close after answering a request with these headers."""
    for name, value in headers:
        name = name.upper()
        if name == "TRANSFER-ENCODING":
            return True
        if name == "CONTENT-LENGTH":
            try:
                return int(value) > drains
            except ValueError:
                return True
    return False


def too_deep(data: Any, limit: int = MAX_DEPTH) -> bool:
    """True if `data` (parsed JSON) nests lists and objects deeper than `limit`.

    Iterative, so the check itself cannot overflow the stack it protects.
    """
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
