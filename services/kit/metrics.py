"""Counters of what one process asks of MongoDB and RabbitMQ, for `make bench`.

Off unless `KEPU_COUNT_DB_COMMANDS=1`: then `install` (called by `kit.mongo.connect`, which
every long-running process calls once) counts every command pymongo sends, by database and
command name (a pymongo `CommandListener`), and every AMQP message the process publishes
and receives, by exchange and kind (py-amqp for nameko, pika for the gateway's RPC client
and the relay). On request only (the bench touches `$KEPU_VAR_DIR/metrics/.request`; a
background thread looks at its mtime four times a second) the process writes its running
totals to `$KEPU_VAR_DIR/metrics/<app>-<pid>.json`: writing on a timer instead put blocking
file writes on booking's event loop during the burst (2-4 % of its py-spy samples). The
bench asks before and after the burst and divides the difference by the claims sent.
Nothing is sent anywhere and no entrypoint changes: when the variable is unset this module
only answers "off".
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pymongo import monitoring

ENABLED_ENV = "KEPU_COUNT_DB_COMMANDS"
FLUSH_S = 0.25  # how often a process looks for a request to write its totals
REQUEST = ".request"
_REPLY = re.compile(r"reply|^[0-9a-f-]{32,}$|^amq\.", re.IGNORECASE)


def enabled(env: dict[str, str] | os._Environ = os.environ) -> bool:
    """Counting costs a lock per command and message, so it is opt-in (benchmarks only)."""
    return env.get("KEPU_COUNT_DB_COMMANDS", "") == "1"


def message_kind(exchange: str, routing_key: str) -> str:
    """`exchange:routing key`, with every RPC reply folded into one kind (their keys are
    per-caller queue names, so counting them apart would only list callers)."""
    if _REPLY.search(routing_key or ""):
        return f"{exchange or '(default)'}:reply"
    return f"{exchange or '(default)'}:{routing_key}"


class Counts:
    """Thread-safe counters of one process: db commands, AMQP publishes and deliveries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.db: Counter[str] = Counter()
        self.published: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()

    def add(self, counter: Counter[str], key: str) -> None:
        with self._lock:
            counter[key] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"db": dict(self.db), "published": dict(self.published),
                    "delivered": dict(self.delivered)}


class CommandCounter(monitoring.CommandListener):
    """Counts each command as `database.command` when it starts (failed ones count too:
    they cost the server a round trip all the same)."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.counts.add(self.counts.db, f"{event.database_name}.{event.command_name}")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_state: dict[str, Any] = {}
_install_lock = threading.Lock()


def counts() -> Counts | None:
    """This process's counters, or None when counting is off."""
    return _state.get("counts")


def install(app_name: str, options: dict[str, Any]) -> None:
    """When counting is on: add the command listener to a MongoClient's `options`, count
    AMQP traffic, and start the writer (once per process; again in a forked child)."""
    if not enabled():
        return
    with _install_lock:
        if _state.get("pid") != os.getpid():
            _state.update(pid=os.getpid(), app=app_name, counts=Counts())
            _count_amqp(_state["counts"])
            threading.Thread(target=_write_forever, name="kepu-metrics", daemon=True).start()
    options.setdefault("event_listeners", []).append(CommandCounter(_state["counts"]))


def path_for(app: str, pid: int) -> Path:
    var = Path(os.environ.get("KEPU_VAR_DIR", "var"))
    return var / "metrics" / f"{app}-{pid}.json"


def write_now() -> None:
    """Write this process's totals (atomically: the bench may read at any moment)."""
    current = counts()
    if current is None:
        return
    path = path_for(_state["app"], _state["pid"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"app": _state["app"], "pid": _state["pid"],
                               "at": time.time(), **current.snapshot()}))
    os.replace(tmp, path)


def request_totals(var: Path) -> float:
    """Ask every counting process under `var` to write its totals; returns when asked."""
    path = var / "metrics" / REQUEST
    path.parent.mkdir(parents=True, exist_ok=True)
    asked = time.time()
    path.write_text(str(asked))
    return asked


def _requested(var: Path) -> int | None:
    try:
        return (var / "metrics" / REQUEST).stat().st_mtime_ns
    except OSError:
        return None


def answer(var: Path, answered: int | None) -> int | None:
    """Write the totals if a request newer than `answered` is waiting; the request answered."""
    asked = _requested(var)
    if asked is None or asked == answered:
        return answered
    try:
        write_now()
    except OSError:
        return answered  # a missing or full var/ must never disturb the measured process
    return asked


def _write_forever() -> None:
    pid, answered = os.getpid(), None
    var = Path(os.environ.get("KEPU_VAR_DIR", "var"))
    while _state.get("pid") == pid:
        answered = answer(var, answered)
        time.sleep(FLUSH_S)


def _count_amqp(current: Counts) -> None:
    """Wrap the publish and deliver paths of both AMQP clients in use, if installed."""
    _wrap_py_amqp(current)
    _wrap_pika(current)


def _wrap_py_amqp(current: Counts) -> None:
    try:
        from amqp.channel import Channel
    except ImportError:
        return
    if getattr(Channel, "_kepu_counted", False):
        return
    publish, deliver = Channel._basic_publish, Channel._on_basic_deliver

    def counted_publish(self: Any, msg: Any, exchange: str = "", routing_key: str = "",
                        *args: Any, **kwargs: Any) -> Any:
        current.add(current.published, message_kind(exchange, routing_key))
        return publish(self, msg, exchange, routing_key, *args, **kwargs)

    def counted_deliver(self: Any, consumer_tag: Any, delivery_tag: Any, redelivered: Any,
                        exchange: str, routing_key: str, msg: Any) -> Any:
        current.add(current.delivered, message_kind(exchange, routing_key))
        return deliver(self, consumer_tag, delivery_tag, redelivered, exchange, routing_key,
                       msg)

    if Channel.basic_publish is publish:
        Channel.basic_publish = counted_publish
    Channel._basic_publish = counted_publish
    Channel._on_basic_deliver = counted_deliver
    Channel._kepu_counted = True


def _wrap_pika(current: Counts) -> None:
    try:
        from pika.channel import Channel
    except ImportError:
        return
    if getattr(Channel, "_kepu_counted", False):
        return
    publish, deliver = Channel.basic_publish, Channel._on_deliver

    def counted_publish(self: Any, exchange: str, routing_key: str, *args: Any,
                        **kwargs: Any) -> Any:
        current.add(current.published, message_kind(exchange, routing_key))
        return publish(self, exchange, routing_key, *args, **kwargs)

    def counted_deliver(self: Any, method_frame: Any, header_frame: Any, body: Any) -> Any:
        method = method_frame.method
        current.add(current.delivered, message_kind(method.exchange, method.routing_key))
        return deliver(self, method_frame, header_frame, body)

    Channel.basic_publish = counted_publish
    Channel._on_deliver = counted_deliver
    Channel._kepu_counted = True


def read_all(var: Path) -> dict[str, dict[str, Any]]:
    """Every process's last written totals under `var`/metrics, by `<app>-<pid>`."""
    found = {}
    for path in sorted((var / "metrics").glob("*.json")):
        try:
            found[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return found
