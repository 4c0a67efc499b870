"""The baseline: a nameko service that answers at once, on the same broker and runner.

Calls per second to `echo.echo` at the burst's concurrency is the ceiling one RPC hop
allows on this machine; the claims' rate is reported as a ratio of it.
"""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc


class EchoService:
    name = "echo"

    @rpc
    def echo(self, payload: Any) -> Any:
        return payload

    @rpc
    def ping(self) -> dict[str, Any]:
        return {"service": self.name, "ok": True}
