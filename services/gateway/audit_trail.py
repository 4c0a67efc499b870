"""The gateway's half of the audit trail: one record per state-changing request it answered.

Why batches by RPC rather than events: the records only go to identity, the gateway has no
outbox (no database of its own to write them in the request's transaction), and one RPC
per second carrying a few hundred records costs far less than a publish per request with
publisher confirms. Nothing is lost on the way:

- `record` appends to this worker's buffer after the answer is built (never blocks the
  request on identity);
- a background thread flushes every `FLUSH_S` in batches of at most `BATCH` by
  `identity.record_requests`; a failed batch stays at the head of the buffer and is sent
  again with backoff. Each record carries its own `entry_id`, which identity stores as the
  record's id, so a batch sent twice (a timeout after identity wrote it) is written once;
- the buffer is bounded (`MAX_BUFFER`): past it, the oldest records are dropped and counted
  in the log (identity down for a long while must not exhaust the gateway's memory);
- at shutdown `close` flushes for at most `CLOSE_S` and logs how many were dropped.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from services.kit import clock
from services.kit.errors import DomainError

log = logging.getLogger("kepu.gateway.audit")

FLUSH_S = 1.0
BATCH = 500
MAX_BUFFER = 20_000
CLOSE_S = 10.0
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


class AuditTrail:
    def __init__(self, send: Callable[[list[dict[str, Any]]], Any],
                 flush_s: float = FLUSH_S, max_buffer: int = MAX_BUFFER) -> None:
        self.send = send
        self.flush_s = flush_s
        self.max_buffer = max_buffer
        self.dropped = 0
        self._buffer: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AuditTrail:
        self._thread = threading.Thread(target=self._run, name="audit-trail", daemon=True)
        self._thread.start()
        return self

    def record(self, entry: dict[str, Any]) -> None:
        """Queue one request's record (`AuditEntry` fields); `at` and `entry_id` added."""
        row = {**entry, "entry_id": os.urandom(16).hex(),  # 128 random bits, as a uuid4's
               "at": entry.get("at") or clock.stamp()}
        with self._lock:
            if len(self._buffer) >= self.max_buffer:
                self._buffer.popleft()
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    log.error("audit buffer full; dropping the oldest records",
                              extra={"dropped": self.dropped})
            self._buffer.append(row)

    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        """Send everything buffered now, a batch at a time; stops at the first failure
        (the batch stays queued). Returns how many were sent."""
        sent = 0
        while True:
            with self._lock:
                batch = [self._buffer[i] for i in range(min(BATCH, len(self._buffer)))]
            if not batch:
                return sent
            delivered = len(batch)
            try:
                self.send(batch)
            except DomainError as exc:
                if exc.status >= 500:
                    raise  # identity unavailable: keep the batch, retry later
                self.dropped += len(batch)  # refused as a whole: retrying cannot help
                delivered = 0
                log.error("audit batch refused by identity; dropped",
                          extra={"count": len(batch), "error": exc.detail[:200]})
            with self._lock:
                for _ in batch:  # only this thread removes, so the head is still `batch`
                    self._buffer.popleft()
            sent += delivered

    def _run(self) -> None:
        delay = self.flush_s
        while not self._stop.wait(delay):
            try:
                self.flush()
                delay = self.flush_s
            except Exception as exc:  # noqa: BLE001 - identity away: keep, retry later
                delay = min(delay * 2, 30.0)
                log.warning("audit records not sent yet; retrying",
                            extra={"pending": self.pending(), "error": str(exc)[:200],
                                   "retry_in_s": delay})

    def close(self, timeout: float = CLOSE_S) -> None:
        """Stop the thread, then flush what is left, for at most `timeout` seconds."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        done = threading.Event()
        error: list[BaseException] = []

        def last() -> None:
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001
                error.append(exc)
            done.set()

        threading.Thread(target=last, name="audit-last-flush", daemon=True).start()
        done.wait(timeout)
        lost = self.pending() + self.dropped
        if lost:
            log.error("audit records dropped at shutdown",
                      extra={"dropped": lost, "error": str(error[0])[:200] if error else None})
