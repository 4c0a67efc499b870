"""One origin for `make run`: the gateway answers /v1 and the health paths, the console
everything else, in the same gunicorn (the console still calls /v1 over HTTP).

A parent's link (`/v1/consents/<token>`, `/v1/surveys/<token>`: what parents get in their
messages) is content-negotiated here: a browser that prefers text/html gets the console's
page, while an integration asking for JSON (or anything but HTML) gets the gateway's
answer as before.
In Kubernetes the two are separate Deployments behind one ingress (deploy/manifests.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
API_PATHS = ("/livez", "/readyz", "/healthz")
PARENT_LINKS = re.compile(r"^/v1/(consents|surveys)/[^/]+/?$")  # links in parents' messages


def wants_html(request: Request) -> bool:
    """True when the client prefers text/html to JSON (a browser following a link)."""
    accept = request.accept_mimetypes
    if not accept:
        return False
    return accept["text/html"] > accept["application/json"]


def for_console(environ: dict[str, Any]) -> bool:
    request = Request(environ, populate_request=False)
    path = request.path or "/"
    if path.startswith("/v1/") or path == "/v1" or path in API_PATHS:
        return bool(PARENT_LINKS.match(path)) and request.method in ("GET", "HEAD") \
            and wants_html(request)
    return True


class Front:
    """Dispatch each request to the console or the gateway by its path (and Accept)."""

    def __init__(self, console: WSGIApp, gateway: WSGIApp) -> None:
        self.console = console
        self.gateway = gateway

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        app = self.console if for_console(environ) else self.gateway
        return app(environ, start_response)


def build() -> Front:
    from services.console.app import create_app
    from services.gateway.wsgi import application as gateway

    return Front(create_app(), gateway)
