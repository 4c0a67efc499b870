"""Calling another service from inside a nameko worker, with a deadline.

nameko's `RpcProxy` waits for a reply forever. When the broker drops connections, a reply
can be lost; the worker would then hang and, one by one, the service would run out of
workers. `ServiceClient("venues")` is the same proxy with every call bounded by
`KEPU_RPC_TIMEOUT_S`: past it the call raises `Unavailable` (a 503 at the gateway), and
the caller's recovery (e.g. booking's sweep) finishes the work later. The proxy is
`services.kit.rpc.RpcProxy`: nameko's, with its publisher kept for the service's life.
"""

from __future__ import annotations

from typing import Any

import eventlet

from services.kit.errors import Unavailable
from services.kit.rpc import RpcProxy


class _Deadline:
    def __init__(self, proxy: Any, service: str, timeout: float) -> None:
        self._proxy = proxy
        self._service = service
        self._timeout = timeout

    def __getattr__(self, method: str) -> Any:
        target = getattr(self._proxy, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                with eventlet.Timeout(self._timeout):
                    return target(*args, **kwargs)
            except eventlet.Timeout:
                raise Unavailable(f"{self._service}.{method} did not answer within "
                                  f"{self._timeout:.0f}s", code="upstream-timeout") from None

        return call


class ServiceClient(RpcProxy):
    """An `RpcProxy` whose calls give up after the configured RPC timeout."""

    def get_dependency(self, worker_ctx: Any) -> Any:
        settings = self.container.config["KEPU_SETTINGS"]
        return _Deadline(super().get_dependency(worker_ctx), self.target_service,
                         settings.rpc_timeout_s)
