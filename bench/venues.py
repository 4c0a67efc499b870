"""Venues benchmark: seat holds per second through RPC, and catalogue latency at 10,000 sessions.

    .venv/bin/python bench/venues.py                      # a private stack, started and stopped
    .venv/bin/python bench/venues.py --stack-env var/stack.env   # a stack `make up` started

A private stack gets its own nx-27017 (temporary directory), its own RabbitMQ vhost and its
own gateway port, so nothing a developer runs is touched. Figures go to stdout as a table
and to var/bench/venues.json. Nothing here asserts a timing: it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pymongo
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.percentiles import pct  # noqa: E402
from deploy import broker as broker_admin  # noqa: E402
from deploy.stack import Stack, free_port, stack_env  # noqa: E402
from services.kit import auth  # noqa: E402
from services.kit.actor import Actor, actor_key, sign  # noqa: E402
from services.kit.rpc_client import RpcClient  # noqa: E402

BENCH_ADMIN = Actor(sub="bench", role="admin")


def admin() -> dict[str, Any]:
    """The bench's admin, signed as the gateway would sign it (services verify actors)."""
    return sign(BENCH_ADMIN, actor_key(os.environ["KEPU_JWT_SECRET"]))
CENTRE = (31.2304, 121.4737)  # People's Square, Shanghai
CATEGORIES = ("science", "moral", "tutoring", "sports", "arts", "labour", "tradition",
              "innovation")


@contextmanager
def private_stack() -> Iterator[dict[str, str]]:
    """Every service, the relay and the gateway on a private database and vhost."""
    tmp = Path(tempfile.mkdtemp(prefix="kepu-bench-"))
    vhost = f"kepu-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    broker_admin.create_vhost(vhost)
    base = {**os.environ, "AMQP_URL": broker_admin.vhost_url(
        os.environ.get("AMQP_URL", broker_admin.DEFAULT), vhost),
        "KEPU_MONGO_PORT": str(free_port()), "KEPU_JWT_SECRET": uuid.uuid4().hex * 2,
        "KEPU_LOG_LEVEL": "WARNING"}
    base.pop("MONGO_URL", None)
    env = stack_env(base, var=tmp / "var", gateway_port=free_port())
    Path(env["KEPU_MONGO_DIR"]).mkdir(parents=True, exist_ok=True)
    stack = Stack(env, tmp / "logs")
    try:
        print(f"starting a private stack in {tmp} ...", flush=True)
        stack.start_all()
        stack.wait_healthy(timeout=120)
        yield env
    finally:
        stack.close()
        broker_admin.delete_vhost(vhost)
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def running_stack(path: Path) -> Iterator[dict[str, str]]:
    env = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    from services.kit.config import Settings

    env.setdefault("KEPU_JWT_SECRET", Settings.from_env({**os.environ, **env}).jwt_secret)
    yield env


def seed(rpc: RpcClient, sessions: int, venues: int, rng: random.Random) -> dict[str, Any]:
    """`sessions` sessions as daily series of up to 200, spread over `venues` venues."""
    made: list[dict[str, Any]] = []
    for i in range(venues):
        made.append(rpc.venues.register_venue({
            "name": f"Bench venue {i}", "kind": "science_museum",
            "district": f"district-{i % 8}", "address": f"{i} Bench Road",
            "location": {"lat": CENTRE[0] + rng.uniform(-0.5, 0.5),
                         "lon": CENTRE[1] + rng.uniform(-0.6, 0.6)}}, actor=admin()))
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    left, series, began = sessions, 0, time.perf_counter()
    while left > 0:
        count = min(200, left)
        venue = made[series % venues]
        first = start + timedelta(hours=rng.randint(0, 10))
        low = rng.randint(1, 9)
        local_day = first.astimezone(ZoneInfo("Asia/Shanghai")).date()
        answer = rpc.venues.publish_session(venue["venue_id"], {
            "title": f"Bench series {series}", "category": rng.choice(CATEGORIES),
            "audience": rng.choice(("students", "family")), "grades": [low, low + 3],
            "starts_at": first.isoformat(), "ends_at": (first + timedelta(hours=2)).isoformat(),
            "capacity": rng.randint(20, 300), "price_fen": rng.choice((0, 0, 0, 2000)),
            "repeat": {"weekly": {"weekdays": [1, 2, 3, 4, 5, 6, 7],
                                  "until": (local_day + timedelta(days=count - 1)).isoformat()}},
        }, actor=admin(), timeout=120)
        left -= len(answer["sessions"])
        series += 1
    return {"venues": made, "seconds": time.perf_counter() - began, "series": series,
            "sessions": sessions - left}


def wait_relayed(env: dict[str, str], timeout: float = 600) -> float:
    """Wait until the relay published every staged event, so it does not skew the timings."""
    client = pymongo.MongoClient(env["MONGO_URL"], tz_aware=True)
    db = client[f"{env.get('KEPU_DB_PREFIX', 'kepu')}_venues"]
    began = time.perf_counter()
    try:
        while any(db[name].count_documents({"outbox_pending": {"$gt": 0}}, limit=1)
                  for name in ("series", "sessions", "venues")):
            if time.perf_counter() - began > timeout:
                raise TimeoutError("the relay did not catch up")
            time.sleep(0.5)
    finally:
        client.close()
    return time.perf_counter() - began


def bench_holds(rpc: RpcClient, venue_id: str, holds: int, concurrency: int,
                sessions: int) -> dict[str, Any]:
    """`holds` holds of a class each (20-40 seats) over `sessions` sessions of 10,000 seats.

    Every hold fits, so each one costs the full path: a read and the conditional update.
    """
    when = datetime.now(UTC) + timedelta(days=30)
    ids = [rpc.venues.publish_session(venue_id, {
        "title": "Hold bench", "category": "science", "audience": "students", "grades": [1, 9],
        "starts_at": when.isoformat(), "ends_at": (when + timedelta(hours=2)).isoformat(),
        "capacity": 10_000, "price_fen": 0}, actor=admin())["session_id"] for _ in range(sessions)]
    run = uuid.uuid4().hex[:6]
    latencies: list[float] = []

    sizes = random.Random(holds).choices(range(20, 41), k=concurrency + holds)

    def hold(i: int) -> int:
        began = time.perf_counter()
        answer = rpc.venues.hold(ids[i % sessions], f"clm_{run}_{i}", f"sch_{i % 50}",
                                 sizes[i])
        latencies.append(time.perf_counter() - began)
        return sizes[i] if answer["ok"] else 0

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(hold, range(min(concurrency, holds))))  # connections warmed up
        latencies.clear()
        began = time.perf_counter()
        oks = list(pool.map(hold, range(concurrency, concurrency + holds)))
        elapsed = time.perf_counter() - began
    held = sum(rpc.venues.seats(sid)["held"] for sid in ids)
    warm = sum(sizes[:min(concurrency, holds)])
    return {"sessions": sessions, "holds": holds, "concurrency": concurrency,
            "accepted": sum(1 for n in oks if n), "seconds": round(elapsed, 3),
            "holds_per_s": round(holds / elapsed, 1),
            "p50_ms": round(pct(latencies, 50) * 1000, 1),
            "p95_ms": round(pct(latencies, 95) * 1000, 1),
            "consistent": held == sum(oks) + warm}


def bench_catalogue(url: str, token: str, queries: int,
                    district: str) -> dict[str, dict[str, float]]:
    """Latency of typical catalogue queries through the gateway, one at a time."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    lat, lon = CENTRE

    def page(params: dict[str, Any]) -> dict[str, Any]:
        response = http.get(f"{url}/v1/sessions", params=params, timeout=60)
        response.raise_for_status()
        return response.json()

    def fifth_page() -> dict[str, Any]:
        cursor = None
        for _ in range(4):
            cursor = page({"limit": 20, **({"cursor": cursor} if cursor else {})})["next_cursor"]
        return {"limit": 20, "cursor": cursor}

    kinds: dict[str, Callable[[], dict[str, Any]]] = {
        "first page (time order)": lambda: {"limit": 20},
        "grade 5, free": lambda: {"grade": 5, "free": "true", "limit": 20},
        "district + category": lambda: {"district": district, "category": "science",
                                        "limit": 20},
        "next month, grade 3-4": lambda: {
            "from": (datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
            "to": (datetime.now(UTC) + timedelta(days=60)).date().isoformat(),
            "grade": 3, "grade_max": 4, "limit": 20},
        "5th page by cursor": fifth_page,
        "near, radius 10 km": lambda: {"near": f"{lat},{lon}", "radius_km": 10, "limit": 20},
        "near, no radius": lambda: {"near": f"{lat + 0.3},{lon - 0.4}", "limit": 20},
    }
    results: dict[str, dict[str, float]] = {}
    for name, make in kinds.items():
        params = make()
        page(params)  # warm
        timings = []
        for _ in range(queries):
            began = time.perf_counter()
            body = page(params)
            timings.append(time.perf_counter() - began)
        results[name] = {"p50_ms": round(statistics.median(timings) * 1000, 1),
                         "p95_ms": round(pct(timings, 95) * 1000, 1),
                         "items": len(body["items"])}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stack-env", type=Path,
                        help="use the running stack described here (var/stack.env)")
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions to store")
    parser.add_argument("--hot-holds", type=int, default=240,
                        help="holds on one session (a class each; 240 fill most of it)")
    parser.add_argument("--holds", type=int, default=2_000, help="holds over 20 sessions")
    parser.add_argument("--concurrency", type=int, default=16, help="parallel RPC callers")
    parser.add_argument("--queries", type=int, default=50, help="repeats of each query")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "venues.json")
    args = parser.parse_args()
    rng = random.Random(2026)
    stack = running_stack(args.stack_env) if args.stack_env else private_stack()
    with stack as env:
        os.environ["KEPU_JWT_SECRET"] = env["KEPU_JWT_SECRET"]
        rpc = RpcClient(env["AMQP_URL"], timeout=60)
        try:
            print(f"seeding {args.sessions} sessions ...", flush=True)
            seeded = seed(rpc, args.sessions, max(1, min(50, args.sessions // 200)), rng)
            venue_id = seeded["venues"][0]["venue_id"]
            print(f"waiting for the relay ({args.sessions} events) ...", flush=True)
            seeded["relayed_seconds"] = wait_relayed(env)
            print("timing holds ...", flush=True)
            holds = {"one hot session": bench_holds(rpc, venue_id, args.hot_holds,
                                                    args.concurrency, 1),
                     "spread over 20 sessions": bench_holds(rpc, venue_id, args.holds,
                                                            args.concurrency, 20)}
            print("timing the catalogue ...", flush=True)
            token = auth.mint(env["KEPU_JWT_SECRET"], "school", "sch_bench")
            catalogue = bench_catalogue(env["KEPU_URL"], token, args.queries,
                                        seeded["venues"][0]["district"])
        finally:
            rpc.close()
    report = {"measured_at": datetime.now(UTC).isoformat(), "cpus": os.cpu_count(),
              "sessions_stored": seeded["sessions"],
              "seed_seconds": round(seeded["seconds"], 1),
              "relay_catch_up_seconds": round(seeded["relayed_seconds"], 1), "holds": holds,
              "catalogue": catalogue, "stack": "running" if args.stack_env else "private"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nseeded {seeded['sessions']} sessions in {report['seed_seconds']} s "
          f"({seeded['series']} series through RPC)\n")
    print(f"{'holds through RPC':<28}{'conc':>6}{'holds/s':>10}{'p50 ms':>9}{'p95 ms':>9}"
          f"{'ok':>6}")
    for name, row in holds.items():
        print(f"{name:<28}{row['concurrency']:>6}{row['holds_per_s']:>10}{row['p50_ms']:>9}"
              f"{row['p95_ms']:>9}{'yes' if row['consistent'] else 'NO':>6}")
    print(f"\n{'catalogue query (HTTP)':<28}{'p50 ms':>9}{'p95 ms':>9}{'items':>7}")
    for name, row in catalogue.items():
        print(f"{name:<28}{row['p50_ms']:>9}{row['p95_ms']:>9}{row['items']:>7}")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
