"""A fixed piece of Python work, timed by its own thread's CPU: how fast the machine runs
Python while the bench measures.

The same code has cost 10.4 and 13.8 ms of Kepu's CPU per claim an hour apart, with
nothing else on the machine by /proc/stat. A hypervisor that slows this guest's cores,
or a busy sibling thread on the host, shows in no counter the guest can read. Timing a
fixed workload by its thread's CPU time (waiting for a core or for the GIL does not
count) at idle and through the costs window tells a slower machine from a costlier claim:
a run whose yardstick is 20 % longer should spend about 20 % more CPU on the same work,
if the stack slows as the yardstick does (docs/performance.md, "A third sitting").
"""

from __future__ import annotations

import hashlib
import json
import statistics
import threading
import time

INTERVAL_S = 1.0  # one sample a second costs the window ~0.5 % of a core
ROUNDS = 200  # ~5 ms of CPU per sample on this machine

# about a claim as booking handles it: a document to encode, decode, hash and copy
_CLAIM = {
    "_id": "clm_" + "7f3a" * 6, "school_id": "sch_01HZX3Q9J5W8K2M4N6P8R0T2V7",
    "school_name": "第一实验小学", "session_id": "ses_01HZX3Q9J5W8K2M4N6P8R0T2V4",
    "status": "confirmed", "seats": 128,
    "groups": [{"label": f"五年级({i})班", "grade": 5, "students": 30 + i, "teachers": 2}
               for i in range(1, 5)],
    "history": {f"2026-12-02T03:00:0{i}.000000Z": {"status": "pending", "by": "system"}
                for i in range(3)},
}


def once(rounds: int = ROUNDS) -> float:
    """CPU ms this thread spends on the fixed workload."""
    start = time.thread_time()
    for i in range(rounds):
        text = json.dumps(_CLAIM, ensure_ascii=False)
        back = json.loads(text)
        copy = {**back, "groups": [dict(g, seq=i) for g in back["groups"]]}
        hashlib.sha256(f"{copy['_id']}|{i}|{text}".encode()).hexdigest()
        sorted(copy["history"].items())
    return (time.thread_time() - start) * 1000


def median_of(samples: list[float]) -> float | None:
    return round(statistics.median(samples), 2) if samples else None


class Sampler:
    """Takes `once()` every `interval_s` on its own thread until stopped."""

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="yardstick", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> list[float]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.samples

    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.samples.append(once())
