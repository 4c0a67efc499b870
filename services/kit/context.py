"""Per-worker context for nameko services: the correlation id of the call or event."""

from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider

from services.kit.logs import correlation_id, new_correlation_id


class LogContext(DependencyProvider):
    """Puts the caller's correlation id into this worker's log context."""

    def worker_setup(self, worker_ctx: Any) -> None:
        data = worker_ctx.data
        cid = data.get("correlation_id")
        if not cid:
            cid = new_correlation_id()
            data["correlation_id"] = cid
        correlation_id.set(cid)

    def worker_teardown(self, worker_ctx: Any) -> None:
        correlation_id.set(None)

    def get_dependency(self, worker_ctx: Any) -> str | None:
        return worker_ctx.data.get("correlation_id")
