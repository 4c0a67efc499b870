"""How big a request body the gateway takes, and which requests end their connection.

A body refused as too large is left unread on the socket. gunicorn drains at most 64 KiB of
it before giving up on the connection, yet it has already answered `Connection: keep-alive`,
so a client that reuses the connection loses its next request ("remote end closed
connection without response"). A request whose body is declared over the default limit, or
whose length is unknown (chunked), is therefore answered with `Connection: close`: its
client opens a fresh connection, one handshake after a large upload.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_MAX_BODY = 1 << 20


def closes_connection(headers: Iterable[tuple[str, str]], limit: int = DEFAULT_MAX_BODY) -> bool:
    """True when the connection should close after answering a request with these headers."""
    for name, value in headers:
        name = name.upper()
        if name == "TRANSFER-ENCODING":
            return True
        if name == "CONTENT-LENGTH":
            try:
                return int(value) > limit
            except ValueError:
                return True
    return False
