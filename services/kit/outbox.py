"""The transactional outbox: an event is written in the same MongoDB write as the change.

MongoDB's single-document writes are atomic, so each aggregate document carries its own
outbox: a map `outbox.<key>` of envelopes not yet published, and a counter
`outbox_pending` the relay finds them by. Keys sort by creation time, which gives the
relay the order to publish one aggregate's events in.

    doc = with_events(doc, event("venues.venue_registered", data))            # insert
    update = add_events({"$set": {...}}, event("venues.session_cancelled", data))  # update
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any

from services.kit import registry
from services.kit.envelope import new_envelope
from services.kit.logs import correlation_id

OUTBOX_FIELD = "outbox"
PENDING_FIELD = "outbox_pending"

_tiebreak = itertools.count()
_stagings = 0  # times this process staged events (kit.doorbell)


def event(event_type: str, data: dict[str, Any], version: int | None = None,
          occurred_at: datetime | None = None) -> dict[str, Any]:
    """A new envelope for `event_type`, its data checked against the registered contract."""
    version = version or registry.latest_version(event_type)
    payload = registry.dump_data(event_type, version, data)
    return new_envelope(event_type, version, payload, correlation_id=correlation_id.get(),
                        occurred_at=occurred_at)


def outbox_key(envelope: dict[str, Any]) -> str:
    """A map key that sorts in creation order within this process, unique across processes."""
    return f"{time.time_ns():020d}{next(_tiebreak) % 1000:03d}_{envelope['event_id']}"


def _staged(envelopes: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    global _stagings
    if envelopes:
        _stagings += 1
    return {outbox_key(env): env for env in envelopes}


def stagings() -> int:
    """How many times this process staged events, for the doorbell: a worker after which
    the count moved rings the relays."""
    return _stagings


def with_events(document: dict[str, Any], *envelopes: dict[str, Any]) -> dict[str, Any]:
    """A new document to insert, carrying `envelopes` in its outbox."""
    staged = _staged(envelopes)
    return {**document, OUTBOX_FIELD: staged, PENDING_FIELD: len(staged)}


def add_events(update: dict[str, Any], *envelopes: dict[str, Any]) -> dict[str, Any]:
    """An update document that also stages `envelopes` in the target's outbox."""
    if not envelopes:
        return update
    staged = _staged(envelopes)
    result = {op: dict(fields) for op, fields in update.items()}
    sets = result.setdefault("$set", {})
    for key, env in staged.items():
        sets[f"{OUTBOX_FIELD}.{key}"] = env
    incs = result.setdefault("$inc", {})
    incs[PENDING_FIELD] = incs.get(PENDING_FIELD, 0) + len(staged)
    return result


def pending(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The outbox entries of a document, in publishing order."""
    return sorted((document.get(OUTBOX_FIELD) or {}).items())


def mark_sent_update(keys: list[str], per_document: int | None = None) -> dict[str, Any]:
    """The update removing published entries `keys` from a document's outbox.

    With `per_document`, `keys` are those of several documents, `per_document` of them each,
    for one `update_many` over them all (unsetting another document's key is a no-op).
    """
    if not keys:
        return {}
    return {"$unset": {f"{OUTBOX_FIELD}.{key}": "" for key in keys},
            "$inc": {PENDING_FIELD: -(per_document or len(keys))}}


def unrelayed(client: Any, prefix: str) -> bool:
    """Whether any collection of the databases named `prefix…` holds an entry the relay has
    not published yet (benches and tests wait on it before they measure or compare)."""
    for name in client.list_database_names():
        if name.startswith(prefix):
            db = client[name]
            if any(db[coll].find_one({PENDING_FIELD: {"$gt": 0}}, {"_id": 1})
                   for coll in db.list_collection_names()):
                return True
    return False
