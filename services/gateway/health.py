"""`/healthz`: the broker, the database and every service answer."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

ALL_SERVICES = ("venues", "booking", "notifications", "funding")
# A partial stack (KEPU_SERVICES=venues,booking) reports only on the services it runs.
SERVICES = tuple(s for s in os.environ.get("KEPU_SERVICES", ",".join(ALL_SERVICES)).split(",")
                 if s in ALL_SERVICES)
_pool = ThreadPoolExecutor(max_workers=len(ALL_SERVICES), thread_name_prefix="healthz")


def _service(gateway: Any, name: str) -> str:
    try:
        gateway.rpc.call(name, "ping", timeout=5)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - health reports, never raises
        return f"down: {exc}"


def check(gateway: Any) -> tuple[int, dict[str, Any]]:
    report: dict[str, Any] = {}
    try:
        gateway.mongo.admin.command("ping")
        report["database"] = "ok"
    except Exception as exc:  # noqa: BLE001
        report["database"] = f"down: {exc}"
    services = dict(zip(SERVICES, _pool.map(lambda n: _service(gateway, n), SERVICES),
                        strict=True))
    try:
        gateway.rpc.check()
        report["broker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        report["broker"] = f"down: {exc}"
    report["services"] = services
    healthy = (report["database"] == report["broker"] == "ok"
               and all(v == "ok" for v in services.values()))
    report["status"] = "ok" if healthy else "degraded"
    return (200 if healthy else 503), report
