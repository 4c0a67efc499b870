"""Identity's figures (`make bench` prints them beside the burst; docs/performance.md):

1. argon2id: the parameters, and one hash / one verification measured in process;
2. sign-in: p50/p95 of `POST /v1/auth/login` at 8 concurrent sign-ins through the gateway
   (8 people provisioned first, each signing in repeatedly; target p95 ≤ 300 ms);
3. the gateway's added cost per request of checking an access token locally: `verify`
   (signature, claims, the cut-off lookup) in process, no HTTP (target ≤ 1 ms).

    python -m bench.identity                       # 1 and 3 only (no stack needed)
    python -m bench.identity --url URL --amqp AMQP_URL   # all three against a running stack
      (KEPU_JWT_SECRET must be the stack's)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.percentiles import pct
from services.gateway.principals import Cutoffs, Verifier
from services.identity import passwords
from services.kit import auth
from services.kit.actor import Actor, actor_key, sign
from services.kit.rpc_client import RpcClient

CONCURRENCY = 8


def argon2_figures(rounds: int = 15) -> dict[str, Any]:
    hasher = passwords.Passwords()
    stored = hasher.hash("a-bench-password-1")
    hashes, verifies = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        hasher.hash("a-bench-password-1")
        hashes.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        hasher.verify(stored, "a-bench-password-1")
        verifies.append((time.perf_counter() - start) * 1000)
    return {"argon2_time_cost": passwords.TIME_COST,
            "argon2_memory_kib": passwords.MEMORY_KIB,
            "argon2_parallelism": passwords.PARALLELISM,
            "argon2_hash_p50_ms": round(statistics.median(hashes), 1),
            "argon2_verify_p50_ms": round(statistics.median(verifies), 1),
            "argon2_verify_p90_ms": round(pct(verifies, 90), 1)}


def verify_cost(tokens: int = 2000, rounds: int = 10) -> dict[str, Any]:
    """Microseconds per `Verifier.access_token` (what every request pays), in process."""
    secret = "bench-" + uuid.uuid4().hex
    cutoffs = Cutoffs()
    for i in range(1000):  # a realistic table of recent cut-offs to look in
        cutoffs.add(f"usr_{i}", int(time.time()) - 60)
    verifier = Verifier(secret, lambda raw: {}, cutoffs=cutoffs)
    minted = [auth.mint(secret, "school", f"sch_{i % 50}", f"usr_{i}") for i in range(tokens)]
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for token in minted:
            verifier.access_token(token)
        per_round.append((time.perf_counter() - start) / tokens * 1e6)
    return {"verify_p50_us": round(statistics.median(per_round), 1),
            "verify_max_us": round(max(per_round), 1)}


def login_latency(url: str, amqp_url: str, secret: str, per_person: int = 10) -> dict[str, Any]:
    """p50/p95 of sign-ins, `CONCURRENCY` at a time, each a different person."""
    operator = sign(Actor.system("bench"), actor_key(secret))
    people = []
    rpc = RpcClient(amqp_url, timeout=60)
    try:
        for i in range(CONCURRENCY):
            identifier = f"bench-{i}-{uuid.uuid4().hex[:6]}@kepu.bench"
            word = f"Bench-{uuid.uuid4().hex[:12]}"
            rpc.call("identity", "provision", {
                "identifier": identifier, "password": word, "display_name": f"bench {i}",
                "role": "admin"}, actor=operator)
            people.append((identifier, word))
    finally:
        rpc.close()

    def sign_in(person: tuple[str, str]) -> list[float]:
        session = requests.Session()
        out = []
        for _ in range(per_person):
            start = time.perf_counter()
            r = session.post(f"{url}/v1/auth/login", timeout=60,
                             json={"identifier": person[0], "password": person[1]})
            out.append((time.perf_counter() - start) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"login failed: {r.status_code} {r.text[:200]}")
        return out

    sign_in(people[0])  # warm the gateway's connections and identity's hasher
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        latencies = [ms for batch in pool.map(sign_in, people) for ms in batch]
    return {"login_concurrency": CONCURRENCY, "logins": len(latencies),
            "login_p50_ms": round(pct(latencies, 50), 1),
            "login_p95_ms": round(pct(latencies, 95), 1)}


def measure(url: str | None = None, amqp_url: str | None = None,
            secret: str | None = None) -> dict[str, Any]:
    report = {**argon2_figures(), **verify_cost()}
    if url and amqp_url and secret:
        report.update(login_latency(url, amqp_url, secret))
    return report


def table(report: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [
        ("argon2id t / MiB / p", f"{report['argon2_time_cost']} / "
                                 f"{report['argon2_memory_kib'] // 1024} / "
                                 f"{report['argon2_parallelism']}"),
        ("argon2id verify p50 / p90 ms",
         f"{report['argon2_verify_p50_ms']} / {report['argon2_verify_p90_ms']}"),
        ("token verify per request µs (p50 / max)",
         f"{report['verify_p50_us']} / {report['verify_max_us']}")]
    if "login_p95_ms" in report:
        rows.append((f"login p50 / p95 ms at {report['login_concurrency']} concurrent",
                     f"{report['login_p50_ms']} / {report['login_p95_ms']}"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--amqp")
    args = parser.parse_args()
    report = measure(args.url, args.amqp, os.environ.get("KEPU_JWT_SECRET"))
    width = max(len(name) for name, _ in table(report))
    print("\n".join(f"{name:<{width}}  {value}" for name, value in table(report)))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
