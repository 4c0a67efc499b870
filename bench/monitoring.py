"""Monitoring benchmark: folding a district's term, and answering its term report.

    .venv/bin/python -m bench.monitoring                      # a private nx-27017
    .venv/bin/python -m bench.monitoring --scale 0.2          # a fifth of the district
    .venv/bin/python -m bench.monitoring --mongo-url mongodb://127.0.0.1:27017

A district of 300 schools for one term (about 200,000 pupils, 5,000 sessions, 50,000
claims; `--scale` shrinks the counts of sessions and claims) is generated as the
producers would announce it (services/monitoring/simulation.py: claims confirmed and
cancelled, attendance per pupil and by head count, tutor visits, surveys opened and
answered) and fed straight into the domain code (`MonitoringRepository.consume`: the
archive insert, one event at a time as the handler does; then `fold_pending`, the batched
fold the service's timer does), on a fresh database.
Phases:

0. through the broker: the monitoring service alone, fed 3,000 events at 100 per second
   (the holiday burst's claims announce about 40 per second) as the relay publishes them;
   the lag from publishing to archiving, p50/p99;
1. fold: every event archived, then folded; events per second over both, and the
   per-event archive insert p50/p99 ms;
2. the term report computed from the facts (no cache): p50/p95 over repeated reads;
3. the term report as the API serves it (cached until an event arrives): p50/p95;
4. the XLSX workbook; a rebuild from the archive, and whether it gives the same figures.

`make bench` (bench/run.py) also measures the lag during the holiday burst itself: the
monitoring service's archive stamps each claim event's arrival. Figures go
to stdout and var/bench/monitoring.json. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymongo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.percentiles import pct  # noqa: E402
from deploy.stack import free_port  # noqa: E402
from deploy.stack import private_mongo as stack_mongo  # noqa: E402
from services.monitoring import exports, figures, term_facts  # noqa: E402
from services.monitoring.repository import MonitoringRepository  # noqa: E402
from services.monitoring.simulation import district  # noqa: E402
from services.monitoring.term_facts import Filter, Scope  # noqa: E402

OUT = ROOT / "var" / "bench"
DISTRICT = "dst_bench"
TERM = "2026-autumn"


@contextmanager
def private_mongo() -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="kepu-bench-monitoring-"))
    try:
        with stack_mongo(tmp) as url:
            yield url
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fold(repo: MonitoringRepository, envelopes: list[dict[str, Any]]) -> dict[str, Any]:
    """Archive every event one at a time (what the handler does), then fold the archive in
    batches (what the service's timer and reads do); events/s over both."""
    each = []
    start = time.perf_counter()
    for envelope in envelopes:
        t = time.perf_counter()
        repo.consume(envelope)
        each.append((time.perf_counter() - t) * 1000)
    archived = time.perf_counter()
    repo.fold_pending(budget_s=float("inf"))
    wall = time.perf_counter() - start
    return {"events": len(envelopes), "fold_s": round(wall, 1),
            "fold_events_per_s": round(len(envelopes) / wall, 1),
            "archive_s": round(archived - start, 1),
            "archive_p50_ms": round(pct(each, 50), 2),
            "archive_p99_ms": round(pct(each, 99), 2)}


def reads(repo: MonitoringRepository, cold: int, warm: int) -> dict[str, Any]:
    computed = []
    for _ in range(cold):
        t = time.perf_counter()
        figures.report(term_facts.load(repo.db, DISTRICT, TERM, Scope(), Filter()))
        computed.append((time.perf_counter() - t) * 1000)
    repo.term_report(DISTRICT, TERM, Scope())  # fills the cache
    served = []
    for _ in range(warm):
        t = time.perf_counter()
        repo.term_report(DISTRICT, TERM, Scope())
        served.append((time.perf_counter() - t) * 1000)
    one_school = []
    for _ in range(cold):
        t = time.perf_counter()
        repo.term_report(DISTRICT, TERM, Scope(schools=frozenset({"sch_0001"})))
        one_school.append((time.perf_counter() - t) * 1000)
    return {"report_computed_p50_ms": round(pct(computed, 50), 1),
            "report_computed_p95_ms": round(pct(computed, 95), 1),
            "report_served_p50_ms": round(pct(served, 50), 1),
            "report_served_p95_ms": round(pct(served, 95), 1),
            "report_one_school_p95_ms": round(pct(one_school, 95), 1)}


def run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    sessions, claims = int(5000 * args.scale), int(50_000 * args.scale)
    world = district(300, sessions, claims, pupils_per_school=667, district_id=DISTRICT)
    envelopes = world.envelopes()
    say(f"monitoring bench: {len(envelopes)} events (300 schools, {sessions} sessions, "
        f"{claims} claims)")
    client = pymongo.MongoClient(url, tz_aware=True)
    name = f"bench_monitoring_{uuid.uuid4().hex[:8]}"
    try:
        repo = MonitoringRepository(client[name])
        repo.ensure_indexes()
        out: dict[str, Any] = {"schools": 300, "pupils": 300 * 667, "sessions": sessions,
                               "claims": claims, **fold(repo, envelopes)}
        say(f"  folded at {out['fold_events_per_s']} events/s")
        out.update(reads(repo, args.cold, args.warm))
        report = repo.term_report(DISTRICT, TERM, Scope())
        t = time.perf_counter()
        exports.xlsx_file(report)
        out["xlsx_ms"] = round((time.perf_counter() - t) * 1000, 1)
        out["participation_rate"] = report["summary"]["participation_rate"]
        if args.skip_rebuild:
            return out
        before = {k: v for k, v in report.items() if k != "computed_at"}
        t = time.perf_counter()
        repo.rebuild()
        out["rebuild_s"] = round(time.perf_counter() - t, 1)
        after = repo.term_report(DISTRICT, TERM, Scope())
        out["rebuild_identical"] = before == {k: v for k, v in after.items()
                                              if k != "computed_at"}
        return out
    finally:
        client.drop_database(name)
        client.close()


def measure(args: argparse.Namespace, url: str) -> dict[str, Any]:
    out = through_broker(url, args.broker_events, args.broker_rate) if args.broker_events else {}
    say(f"  through the broker: {out}")
    return {**out, **run(args, url)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="share of the 5,000 sessions and 50,000 claims")
    parser.add_argument("--cold", type=int, default=10, help="uncached report reads")
    parser.add_argument("--warm", type=int, default=200, help="cached report reads")
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--broker-events", type=int, default=3000,
                        help="events fed through the broker to the running service (0: none)")
    parser.add_argument("--broker-rate", type=float, default=100.0,
                        help="their rate per second (the burst's claims make ~40 events/s)")
    parser.add_argument("--mongo-url")
    parser.add_argument("--json", action="store_true", help="print only the JSON")
    args = parser.parse_args()
    if args.mongo_url:
        out = measure(args, args.mongo_url)
    else:
        with private_mongo() as url:
            out = measure(args, url)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "monitoring.json").write_text(json.dumps(out, indent=2))
    if args.json:
        print(json.dumps(out))
    else:
        width = max(len(k) for k in out)
        print("\n".join(f"{k:<{width}}  {v}" for k, v in out.items()))
    return 0


# -- through the broker: the monitoring service, fed at a paced rate -----------------------
def through_broker(url: str, count: int, rate: float) -> dict[str, Any]:
    """Start the monitoring service alone (own vhost, the given database), publish `count`
    events of a simulated district to its producers' exchanges as the relay does, `rate`
    per second, each stamped when published; the lag is its archiving less that stamp."""
    import os

    import pika

    from deploy import broker as broker_admin
    from deploy.stack import Stack, stack_env
    from services.kit import broker, clock
    from services.kit.envelope import routing
    from services.kit.rpc_client import RpcClient

    vhost = f"kepu-bench-mon-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    broker_admin.create_vhost(vhost)
    tmp = Path(tempfile.mkdtemp(prefix="kepu-bench-monitoring-stack-"))
    amqp = broker_admin.vhost_url(os.environ.get("AMQP_URL", broker_admin.DEFAULT), vhost)
    env = stack_env({**os.environ, "AMQP_URL": amqp, "MONGO_URL": url,
                     "KEPU_DB_PREFIX": f"benchmon{uuid.uuid4().hex[:6]}",
                     "KEPU_LOG_LEVEL": "WARNING", "KEPU_SERVICES": "monitoring"},
                    var=tmp / "var", gateway_port=free_port())
    stack = Stack(env, tmp / "logs")
    client = pymongo.MongoClient(url, tz_aware=True)
    database = client[f"{env['KEPU_DB_PREFIX']}_monitoring"]
    try:
        stack.start("monitoring")
        rpc = RpcClient(amqp, timeout=5)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                rpc.call("monitoring", "ping")
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.5)
        rpc.close()
        envelopes = district(300, 100, count, 667, district_id=DISTRICT).envelopes()[:count]
        connection = pika.BlockingConnection(broker.parameters(amqp))
        channel = connection.channel()
        channel.confirm_delivery()
        for producer in {routing(e["type"])[0] for e in envelopes}:
            broker.declare_events_exchange(channel, producer)
        start = time.monotonic()
        for i, envelope in enumerate(envelopes):
            pause = start + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            envelope = {**envelope, "occurred_at": clock.stamp()}
            producer, name = routing(envelope["type"])
            channel.basic_publish(broker.events_exchange(producer), name,
                                  json.dumps(envelope, ensure_ascii=False).encode(),
                                  pika.BasicProperties(content_type="application/json",
                                                       delivery_mode=2,
                                                       message_id=envelope["event_id"]))
        sent_s = time.monotonic() - start
        connection.close()
        deadline = time.monotonic() + 300
        while (time.monotonic() < deadline
               and database.archive.count_documents({}) < len(envelopes)):
            time.sleep(0.5)
        rows = list(database.archive.find({}, {"at": 1, "occurred_at": 1}))
        lags = [(r["at"] - clock.parse(r["occurred_at"]).timestamp()) * 1000 for r in rows]
        return {"broker_events": len(envelopes), "broker_archived": len(rows),
                "broker_rate_per_s": round(len(envelopes) / sent_s, 1),
                "broker_lag_p50_ms": round(pct(lags, 50), 1) if lags else None,
                "broker_lag_p99_ms": round(pct(lags, 99), 1) if lags else None}
    finally:
        stack.close()
        client.drop_database(database.name)
        client.close()
        broker_admin.delete_vhost(vhost)
        shutil.rmtree(tmp, ignore_errors=True)


# -- what `make bench` (bench/run.py) takes from here ------------------------------------
def lag(mongo_url: str, results: list[dict[str, Any]], timeout_s: float = 120) -> dict[str, Any]:
    """How far the monitoring service trailed the holiday burst, through the broker: each
    claim event's arrival in its archive (stamped on archiving; folded in the next batch) less
    the event's occurred_at (stamped by booking when it wrote the claim)."""
    from services.kit import clock

    kinds = ["booking.claim_confirmed", "booking.claim_waitlisted"]
    expected = sum(1 for r in results if isinstance(r["body"], dict)
                   and r["body"].get("status") in ("confirmed", "waitlisted"))
    mongo = pymongo.MongoClient(mongo_url, tz_aware=True)
    try:
        archive = mongo.kepu_monitoring.archive
        deadline = time.monotonic() + timeout_s
        while (time.monotonic() < deadline
               and archive.count_documents({"type": {"$in": kinds}}) < expected):
            time.sleep(0.5)
        rows = list(archive.find({}, {"at": 1, "occurred_at": 1, "type": 1}))
    finally:
        mongo.close()
    lags = [(r["at"] - clock.parse(r["occurred_at"]).timestamp()) * 1000
            for r in rows if r["type"] in kinds]
    occurred = sorted(clock.parse(r["occurred_at"]).timestamp() for r in rows)
    span = occurred[-1] - occurred[0] if len(occurred) > 1 else 0
    return {"monitoring_burst_events": len(rows), "monitoring_claim_events": len(lags),
            "monitoring_claim_events_expected": expected,
            "monitoring_burst_events_per_s": round(len(rows) / span, 1) if span else None,
            "monitoring_lag_p50_ms": round(pct(lags, 50), 1) if lags else None,
            "monitoring_lag_p99_ms": round(pct(lags, 99), 1) if lags else None}


def volume(scale: float) -> dict[str, Any]:
    """This bench in its own process (its own nx-27017), prefixed for the burst's report."""
    done = subprocess.run([sys.executable, "-m", "bench.monitoring", "--json", "--scale",
                           str(scale)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"monitoring_bench_error": done.stderr[-500:]}
    return {f"monitoring_{k}": v for k, v in json.loads(done.stdout).items()}


def table(report: dict[str, Any]) -> list[tuple[str, Any]]:
    def get(key: str) -> Any:
        return report.get(f"monitoring_{key}")

    return [
        ("monitoring: burst events / per s", f"{get('burst_events')} / "
                                             f"{get('burst_events_per_s')}"),
        ("monitoring: fed alone via broker, events/s → lag p50 / p99 ms",
         f"{get('broker_rate_per_s')} → {get('broker_lag_p50_ms')} / {get('broker_lag_p99_ms')}"),
        ("monitoring: claim event → archived p50 / p99 ms",
         f"{get('lag_p50_ms')} / {get('lag_p99_ms')}"),
        ("monitoring: district term events / folded per s",
         f"{get('events')} / {get('fold_events_per_s')} (claims {get('claims')})"),
        ("monitoring: term report computed / served p95 ms",
         f"{get('report_computed_p95_ms')} / {get('report_served_p95_ms')}"),
        ("monitoring: one school's report p95 ms", get("report_one_school_p95_ms")),
    ]


if __name__ == "__main__":
    sys.exit(main())
