"""`kepu monitoring rebuild` and `kepu monitoring check`: what the CLI calls, kept here.

`rebuild` drops the read models and folds the archive again (archive.py), on the
monitoring database directly; the service may keep running (a fold during the rebuild
lands in the new collections, and its event is in the archive the rebuild reads).
`check` sets the read model's counts beside the producers' own, asked by RPC through
their public reads as an admin, and returns the differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.kit.actor import Actor, actor_key, sign
from services.kit.config import Settings
from services.kit.mongo import connect
from services.monitoring.repository import MonitoringRepository

PAGE = 200


def repository(settings: Settings) -> MonitoringRepository:
    client = connect(settings, "kepu-cli")
    return MonitoringRepository(client[settings.database("monitoring")], settings)


def rebuild(settings: Settings) -> int:
    """Refold every archived event; the number of events folded."""
    repo = repository(settings)
    repo.ensure_indexes()
    return repo.rebuild()


def _count(call: Callable[[dict[str, Any]], dict[str, Any]], query: dict[str, Any]) -> int:
    total, cursor = 0, None
    while True:
        page = call({**query, "limit": PAGE, **({"cursor": cursor} if cursor else {})})
        total += len(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return total


def producer_counts(rpc: Any, settings: Settings) -> dict[str, int]:
    """What booking itself holds: schools, confirmed and cancelled claims (paged reads)."""
    def signed() -> dict[str, Any]:
        return sign(Actor("kepu-monitoring-check", "admin"), actor_key(settings.jwt_secret))

    def claims(status: str) -> int:
        return _count(lambda q: rpc.call("booking", "list_claims", signed(), q),
                      {"status": status})

    return {"schools": _count(lambda q: rpc.call("booking", "list_schools", signed(), q), {}),
            "claims_confirmed": claims("confirmed"), "claims_cancelled": claims("cancelled")}


def set_aside(repo: MonitoringRepository) -> list[str]:
    """One line per archived event its fold could not read: kept, never folded, never
    dropped silently; a rebuild folds them once the fold is fixed."""
    return [f"event {row['_id']} ({row.get('type')}) set aside, not folded: "
            f"{row.get('fold_error')}" for row in repo.archive.set_aside()]


def check(settings: Settings, rpc: Any) -> list[str]:
    """One line per count that differs between monitoring and its producer, and per event
    set aside unfolded; none: agreed."""
    ours = rpc.call("monitoring", "counts")
    theirs = producer_counts(rpc, settings)
    return [f"{name}: monitoring {ours.get(name)} != booking {count}"
            for name, count in theirs.items() if ours.get(name) != count] + \
        set_aside(repository(settings))
