"""The `ping` RPC every service answers, used by the gateway's /healthz and by `make up`."""

from __future__ import annotations

import os
import socket
from typing import Any

from nameko.rpc import rpc

INSTANCE = f"{socket.gethostname()}:{os.getpid()}"  # which replica answered (scale-out checks)


class Health:
    """Mixin: a service that answers `ping` has its consumers up and its database reachable."""

    name: str
    store: Any

    @rpc
    def ping(self) -> dict[str, Any]:
        self.store.db.command("ping")
        return {"service": self.name, "ok": True, "instance": INSTANCE}
