"""A small HTTP load generator: N keep-alive connections replaying prepared requests.

    python -m bench.load REQUESTS.json RESULTS.json --concurrency 32

REQUESTS.json is a list of {method, path, headers, body}. Each worker thread keeps one
HTTP/1.1 connection open and takes the next request from a shared queue; RESULTS.json
gets, per request, its status, latency and answer, and the generator's own CPU seconds,
so a report can show that the generator was not the bottleneck.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import threading
import time
from typing import Any
from urllib.parse import urlparse


def run(url: str, requests: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    target = urlparse(url)
    work: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue()
    for item in enumerate(requests):
        work.put(item)
    results: list[dict[str, Any] | None] = [None] * len(requests)

    def worker() -> None:
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
        while True:
            try:
                index, req = work.get_nowait()
            except queue.Empty:
                conn.close()
                return
            body = json.dumps(req.get("body")).encode() if req.get("body") is not None else None
            headers = {"Content-Type": "application/json", **req.get("headers", {})}
            for attempt in (1, 2):
                started = time.perf_counter()
                try:
                    conn.request(req["method"], req["path"], body=body, headers=headers)
                    response = conn.getresponse()
                    raw = response.read()
                    status = response.status
                    break
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=120)
                    status, raw = 0, str(exc).encode()
                    if attempt == 2:
                        break
            elapsed = time.perf_counter() - started
            try:
                answer = json.loads(raw) if raw else None
            except ValueError:
                answer = raw.decode("utf-8", "replace")
            results[index] = {"status": status, "ms": elapsed * 1000, "body": answer,
                              "done_at": time.time()}

    cpu0, wall0 = time.process_time(), time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
            "concurrency": concurrency, "results": results}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("requests")
    parser.add_argument("results")
    parser.add_argument("--url", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with open(args.requests) as f:
        requests = json.load(f)
    outcome = run(args.url, requests, args.concurrency)
    with open(args.results, "w") as f:
        json.dump(outcome, f)


if __name__ == "__main__":
    main()
