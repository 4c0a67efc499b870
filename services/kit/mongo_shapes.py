"""CPU per query shape inside the local stand-in (nx-27017), for `bench.run --db-shapes`.

The bench counts commands from the clients' side; what each costs the server is only seen
inside it. With `KEPU_DB_SHAPES_FILE` set, `services.kit.mongo_server` wraps the server's
two command handlers in a timer of the handling thread's CPU and keeps, per shape (database,
collection, command, and the filter with every value replaced by its type; ids in field
names by `<id>`), the calls and CPU seconds. The totals are rewritten to the file every
`EVERY_S`, so a reader taking the difference of two readings is exact to that interval at
either edge. Development only: the timer costs the server a few per cent.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

EVERY_S = 0.5
ENV = "KEPU_DB_SHAPES_FILE"
_ID_IN_NAME = re.compile(r"[a-z]{2,4}_[a-z0-9]{16,}")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT")


def shape(value: Any, depth: int = 0) -> Any:
    """`value` with its data replaced by type names, so equal queries share one key."""
    if isinstance(value, dict):
        if depth >= 4:
            return "{…}"
        return {_ID_IN_NAME.sub("<id>", str(k)): shape(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0], depth + 1)] if value else []
    if isinstance(value, str) and _STAMP.match(value):
        return "stamp"
    return type(value).__name__


def key_of(msg: dict[str, Any]) -> str:
    """`db.collection command {filter shape}` (plus the sort) of one OP_MSG."""
    body = next((doc for kind, doc in msg.get("sections", ()) if kind == "body"), None)
    if not isinstance(body, dict) or not body:
        return "(no body)"
    command = next(iter(body))
    target = f"{body.get('$db')}.{body.get(command)}"
    query = body.get("filter", body.get("query"))
    if command in ("update", "delete"):
        ops = list(body.get("updates") or body.get("deletes") or ())
        for kind, doc in msg.get("sections", ()):  # or sent as a document sequence
            if kind == "payload" and isinstance(doc, dict):
                ops += [op for docs in doc.values() for op in docs]
            elif kind == "payload_docs":
                ops += list(doc)
        query = next((op.get("q") for op in ops if isinstance(op, dict)), None)
    key = f"{target} {command}"
    if query is not None:
        key += " " + json.dumps(shape(query), sort_keys=True, ensure_ascii=False)
    if body.get("sort"):
        key += " sort " + json.dumps(body["sort"], sort_keys=True)
    return key


class Shapes:
    """Calls and CPU seconds per shape, written to `path` every EVERY_S."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.totals: dict[str, list[float]] = {}
        self.lock = threading.Lock()

    def timed(self, handle: Any) -> Any:
        def handler(server: Any, msg: dict[str, Any]) -> Any:
            key = key_of(msg)  # first: the handler takes `$db` out of the message
            started = time.thread_time()
            try:
                return handle(server, msg)
            finally:
                spent = time.thread_time() - started
                with self.lock:
                    total = self.totals.setdefault(key, [0, 0.0])
                    total[0] += 1
                    total[1] += spent
        return handler

    def write(self) -> None:
        with self.lock:
            totals = {k: list(v) for k, v in self.totals.items()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"at": time.time(), "shapes": totals}, ensure_ascii=False))
        os.replace(tmp, self.path)

    def write_forever(self) -> None:
        while True:
            time.sleep(EVERY_S)
            self.write()


def install(handler_class: Any, path: Path) -> Shapes:
    """Time every command `handler_class` handles from now on; totals go to `path`."""
    shapes = Shapes(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in ("handle_command", "handle_insert"):  # inserts take their own path
        setattr(handler_class, name, shapes.timed(getattr(handler_class, name)))
    shapes.write()
    threading.Thread(target=shapes.write_forever, name="kepu-db-shapes", daemon=True).start()
    return shapes


def read(path: Path) -> dict[str, list[float]]:
    """The totals last written, or nothing when the file is absent."""
    try:
        return json.loads(path.read_text())["shapes"]
    except (OSError, ValueError, KeyError):
        return {}


def costliest(before: dict[str, list[float]], after: dict[str, list[float]],
              most: int = 15) -> list[dict[str, Any]]:
    """The shapes that cost the server most CPU between two readings, costliest first."""
    rows = []
    for key, (calls, cpu_s) in after.items():
        calls0, cpu0 = before.get(key, (0, 0.0))
        if calls > calls0:
            rows.append({"shape": key, "calls": int(calls - calls0),
                         "cpu_ms": round((cpu_s - cpu0) * 1000, 1),
                         "cpu_us_per_call": round((cpu_s - cpu0) * 1e6 / (calls - calls0))})
    rows.sort(key=lambda row: -row["cpu_ms"])
    return rows[:most]
