"""Family bookings' figures (`make bench`; docs/performance.md): bookings per second and
latency on one 2,000-seat holiday family session, 32 connections, beside the claim burst.

Households are already verified: each request carries a verification pass minted with
the stack's secret (`services.admissions.passes`), as the code step would have given it,
so the figure is the booking itself (pass check, the one-per-household write, venues'
atomic hold, the answer). Each household books once with 1-2 adults and 0-2 children;
there are more people than seats, so the tail of the burst is waitlisted. Checks: no seat
oversold (venues' holds against capacity and against admissions' held bookings), no
household with two standing bookings, no request without a final answer.

    python -m bench.admissions --url URL --mongo MONGO_URL --amqp AMQP_URL
      (KEPU_JWT_SECRET must be the stack's; its family rate limit lifted)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
import requests

from bench.percentiles import pct
from services.admissions.passes import seal
from services.kit import auth
from services.kit.rpc_client import RpcClient

ROOT = Path(__file__).resolve().parents[1]
RATE_LIMITS = "family=100000:100000"  # one load generator is one address: lift its group


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def publish(url: str, secret: str, seats: int) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {auth.mint(secret, 'admin', None, 'bench-admin')}"}
    venue = requests.post(f"{url}/v1/venues", headers=admin, timeout=30, json={
        "name": "上海天文馆 bench", "kind": "planetarium", "district": "浦东新区",
        "location": {"lat": 31.0, "lon": 121.9}, "address": "临港大道380号"}).json()
    staff = {"Authorization": f"Bearer {auth.mint(secret, 'venue', venue['venue_id'], 'b')}"}
    start = timedelta(days=20)
    session = requests.post(f"{url}/v1/venues/{venue['venue_id']}/sessions", headers=staff,
                            timeout=30, json={
        "title": "寒假亲子观星 bench", "category": "science", "audience": "family",
        "grades": [1, 9], "starts_at": iso(start), "ends_at": iso(start + timedelta(hours=3)),
        "capacity": seats, "price_fen": 3000, "prices_fen": {"adult": 3000, "child": 1500},
        "max_people_per_booking": 4, "max_seats_per_household": 4})
    session.raise_for_status()
    return session.json()


def measure(url: str, mongo_url: str, amqp_url: str, secret: str, concurrency: int = 32,
            seats: int = 2000, households: int = 1200) -> dict[str, Any]:
    """Run the family burst against a running stack; the figures and checks."""
    session = publish(url, secret, seats)
    rng = random.Random(20260701)
    path = f"/v1/family/sessions/{session['session_id']}/bookings"
    work = []
    for n in range(households):
        verification = seal(secret, "verified", {"m": f"137{n:08d}"}, 3600)
        adults = rng.randint(1, 2)
        work.append({"method": "POST", "path": path,
                     "headers": {"Idempotency-Key": uuid.uuid4().hex},
                     "body": {"verification": verification, "adults": adults,
                              "children": rng.randint(0, 2)}})
    with tempfile.TemporaryDirectory(prefix="kepu-bench-family-") as tmp:
        req_file, res_file = Path(tmp) / "requests.json", Path(tmp) / "results.json"
        req_file.write_text(json.dumps(work))
        load = subprocess.run([sys.executable, "-m", "bench.load", str(req_file),
                               str(res_file), "--url", url, "--concurrency", str(concurrency)],
                              cwd=ROOT, capture_output=True, text=True)
        if load.returncode != 0:
            raise RuntimeError(load.stderr)
        outcome = json.loads(res_file.read_text())
    return {**figures(outcome), **check(mongo_url, amqp_url, session, outcome),
            "family_seats": seats, "family_households": households}


def figures(outcome: dict[str, Any]) -> dict[str, Any]:
    lat = [r["ms"] for r in outcome["results"]]
    return {"family_bookings": len(outcome["results"]),
            "family_per_s": round(len(outcome["results"]) / outcome["wall_s"], 1),
            "family_p50_ms": round(pct(lat, 50), 1), "family_p99_ms": round(pct(lat, 99), 1)}


def check(mongo_url: str, amqp_url: str, session: dict[str, Any],
          outcome: dict[str, Any]) -> dict[str, Any]:
    rpc = RpcClient(amqp_url, timeout=30)
    try:
        seats = rpc.call("venues", "seats", session["session_id"])
    finally:
        rpc.close()
    mongo = pymongo.MongoClient(mongo_url)
    bookings = mongo.kepu_admissions.bookings
    held = {d["_id"]: d["people"] for d in bookings.find(
        {"session_id": session["session_id"], "status": {"$in": ["held", "confirmed"]}},
        {"people": 1})}
    standing: dict[str, int] = {}
    for doc in bookings.find({"session_id": session["session_id"], "slot": "active"},
                             {"household": 1}):
        standing[doc["household"]] = standing.get(doc["household"], 0) + 1
    mongo.close()
    statuses: dict[str, int] = {}
    lost = 0
    for result in outcome["results"]:
        body = result["body"] if isinstance(result["body"], dict) else {}
        status = body.get("status") or f"http {result['status']}"
        statuses[status] = statuses.get(status, 0) + 1
        lost += int(result["status"] != 201 or status not in ("held", "waitlisted"))
    return {"family_oversold": max(0, sum(seats["holds"].values()) - seats["capacity"]),
            "family_inconsistent": int(held != seats["holds"]),
            "family_households_twice": sum(1 for n in standing.values() if n > 1),
            "family_lost": lost, "family_statuses": statuses}


def table(report: dict[str, Any]) -> list[tuple[str, Any]]:
    if "family_per_s" not in report:
        return []
    return [
        ("family bookings sent (households) / seats",
         f"{report['family_bookings']} / {report['family_seats']}"),
        ("family bookings/s", report["family_per_s"]),
        ("family booking latency p50 / p99 ms",
         f"{report['family_p50_ms']} / {report['family_p99_ms']}"),
        ("family seats oversold / households booked twice / lost",
         f"{report['family_oversold']} / {report['family_households_twice']} / "
         f"{report['family_lost']}"),
        ("family statuses", report["family_statuses"])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--mongo", required=True)
    parser.add_argument("--amqp", required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seats", type=int, default=2000)
    parser.add_argument("--households", type=int, default=1200)
    args = parser.parse_args()
    report = measure(args.url, args.mongo, args.amqp, os.environ["KEPU_JWT_SECRET"],
                     args.concurrency, args.seats, args.households)
    for name, value in table(report):
        print(f"{name:<56}  {value}")
    return 0 if not (report["family_oversold"] or report["family_lost"]
                     or report["family_households_twice"]) else 1


if __name__ == "__main__":
    sys.exit(main())
