"""gunicorn settings for the gateway; every value can be overridden from the environment."""

import os
from typing import Any

from services.gateway.limits import closes_connection

bind = os.environ.get("KEPU_GATEWAY_BIND", "127.0.0.1:8080")
worker_class = "gthread"
workers = int(os.environ.get("KEPU_GATEWAY_WORKERS", "2"))
threads = int(os.environ.get("KEPU_GATEWAY_THREADS", "16"))
timeout = 60
graceful_timeout = 15
# Idle keep-alive connections are closed after this many seconds. It must outlast the idle
# timeout of whatever sits in front (ingress-nginx and most load balancers: 60 s), or a client
# can send on a connection at the instant the gateway closes it and lose the request.
keepalive = int(os.environ.get("KEPU_GATEWAY_KEEPALIVE", "75"))
accesslog = None
errorlog = "-"
loglevel = os.environ.get("KEPU_LOG_LEVEL", "info").lower()


def pre_request(worker: Any, req: Any) -> None:
    """Answer `Connection: close` where the gateway may leave a body unread (see limits)."""
    if closes_connection(req.headers):
        req.must_close = True
