"""`make bench`: the holiday burst, measured honestly, beside a bare RPC baseline.

Brings up a private stack (its own RabbitMQ vhost, its own nx-27017, a loopback SMTP
sink), then:
1. baseline: `echo.echo` RPC calls per second at the burst's concurrency, through the
   same broker and the same RPC client the gateway uses;
2. burst: 50 sessions, 1,000 schools each with a class roster, and two claims per school
   through the HTTP gateway from `bench.load` at 32 keep-alive connections;
3. checks: seats oversold (venues' holds against capacity and against booking's confirmed
   claims), claims lost (a request without a final answer, or an answer that differs from
   what is stored), and the time from each claim's confirmation to each guardian's e-mail
   arriving at the SMTP sink;
4. identity (bench/identity.py, before the burst): argon2id's parameters and cost, sign-in
   p50/p95 at 8 concurrent sign-ins, and the gateway's per-request token check;
5. monitoring (bench/monitoring.py): how far its projection trails the burst's claim events
   through the broker (p50/p99), then, after the stack, a 300-school district's term folded
   into its domain code and its term report read, cold and cached;
6. the console (bench/console.py): server-side render time of each main page, p50/p95, on
   the burst's data, as the console reports it in Server-Timing;
7. family bookings (bench/admissions.py): bookings per second and p50/p99 on one
   2,000-seat holiday family session at the same concurrency, after the claim burst;
8. costs (bench/costs.py): database commands by service and kind, CPU ms by process and
   AMQP messages, per claim, over the burst and its fan-out; py-spy flame graphs of
   booking, venues and the gateway during the burst (var/bench/flame-*.svg); with
   `--db-shapes`, the database server's own CPU per query shape over the same window; and
   what else used the machine's CPU meanwhile (others' share of the cores, steal).
Prints a table and writes var/bench/latest.json. Figures are whole-run medians/percentiles
of one run: compare runs on the same machine, mind the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
import requests

from bench import admissions as admissions_bench
from bench import console as console_bench
from bench import costs as costs_bench
from bench import identity as identity_bench
from bench import monitoring as monitoring_bench
from bench.percentiles import pct
from deploy import broker as broker_admin
from deploy.stack import ROOT, Stack, free_port, stack_env
from services.kit import auth, clock, mongo_shapes
from services.kit.rpc_client import RpcClient
from tests.sinks import Sinks

OUT = ROOT / "var" / "bench"


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def trip_in(text: str, titles: list[str]) -> str | None:
    """The trip an e-mail is about: the longest title in its text. A school's two claims
    are for two sessions, and "寒假科学课 #1" is inside "寒假科学课 #17": matched by the
    first title found, an e-mail about #17 took #1's confirmation time (4 s off in a run)."""
    found = [title for title in titles if title in text]
    return max(found, key=len) if found else None


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="kepu-bench-"))
        self.vhost = f"kepu-bench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.secret = "bench-" + uuid.uuid4().hex
        self.report: dict[str, Any] = {"cores": os.cpu_count()}

    # -- the stack --------------------------------------------------------------------------
    def start(self, sinks: Sinks) -> Stack:
        broker_admin.create_vhost(self.vhost)
        base = {**os.environ, **sinks.env(), "KEPU_JWT_SECRET": self.secret,
                "AMQP_URL": broker_admin.vhost_url(os.environ.get("AMQP_URL",
                                                                  broker_admin.DEFAULT),
                                                   self.vhost),
                "KEPU_LOG_LEVEL": "WARNING", "KEPU_COUNT_DB_COMMANDS": "1",
                "KEPU_RATE_LIMITS": admissions_bench.RATE_LIMITS}
        base.pop("MONGO_URL", None)
        env = stack_env(base, var=self.tmp / "var", gateway_port=free_port())
        env["KEPU_MONGO_PORT"] = str(free_port())
        env["MONGO_URL"] = f"mongodb://127.0.0.1:{env['KEPU_MONGO_PORT']}"
        if self.args.db_shapes:
            env[mongo_shapes.ENV] = str(self.tmp / "var" / "db-shapes.json")
        self.stack = Stack(env, self.tmp / "logs")
        self.stack.start_all()
        self.stack.start("bench.echo:EchoService")
        self.stack.wait_healthy(timeout=120)
        self.url = env["KEPU_URL"]
        return self.stack

    def stop(self) -> None:
        stack = getattr(self, "stack", None)
        if stack is not None:
            stack.close()
        broker_admin.delete_vhost(self.vhost)

    def tidy(self, clean: bool) -> None:
        """Remove the stack's logs and database files (~35 MB a run), unless asked to keep
        them or the run failed or found a seat oversold or a claim lost: then say where
        they are."""
        if clean and not self.args.keep_files:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"the stack's logs and data are kept in {self.tmp}", file=sys.stderr)

    def token(self, role: str, org: str | None = None) -> str:
        return auth.mint(self.secret, role, org, f"bench-{role}-{org or 'x'}")

    # -- 1. baseline --------------------------------------------------------------------------
    def baseline(self) -> float:
        client = RpcClient(self.stack.env["AMQP_URL"], timeout=30)
        calls = self.args.echo_calls
        payload = {"session_id": "ses_x", "groups": [{"label": "五年级(1)班", "grade": 5,
                                                      "students": 30, "teachers": 2}]}
        with ThreadPoolExecutor(self.args.concurrency) as pool:
            list(pool.map(lambda _: client.call("echo", "echo", payload), range(200)))
            started = time.perf_counter()
            list(pool.map(lambda _: client.call("echo", "echo", payload), range(calls)))
            elapsed = time.perf_counter() - started
        client.close()
        return calls / elapsed

    # -- 2. the burst ---------------------------------------------------------------------------
    def setup(self) -> dict[str, Any]:
        admin = requests.Session()
        admin.headers["Authorization"] = f"Bearer {self.token('admin')}"
        venue = admin.post(f"{self.url}/v1/venues", json={
            "name": "上海科技馆 bench", "kind": "science_museum", "district": "浦东新区",
            "location": {"lat": 31.2196, "lon": 121.5447}, "address": "世纪大道2000号"}).json()
        staff = requests.Session()
        staff.headers["Authorization"] = f"Bearer {self.token('venue', venue['venue_id'])}"
        sessions = []
        for n in range(self.args.sessions):
            start = timedelta(days=10 + n % 20, hours=n % 5)
            response = staff.post(f"{self.url}/v1/venues/{venue['venue_id']}/sessions", json={
                "title": f"寒假科学课 #{n}", "category": "science", "audience": "students",
                "grades": [1, 9], "starts_at": iso(start),
                "ends_at": iso(start + timedelta(hours=2)), "capacity": self.args.capacity,
                "price_fen": 0, "claim_policy": "first_come"})
            response.raise_for_status()
            sessions.append(response.json())

        def make_school(i: int) -> dict[str, Any]:
            http = requests.Session()
            http.headers["Authorization"] = admin.headers["Authorization"]
            school = http.post(f"{self.url}/v1/schools", json={
                "name": f"第{i}小学", "district": "浦东新区",
                "location": {"lat": 31.0 + i / 10000, "lon": 121.5}, "rural": i % 7 == 0,
                "under_resourced": i % 11 == 0, "students": 900}).json()
            token = self.token("school", school["school_id"])
            roster = {"pupils": [{"name": f"学生{i}-{p}", "guardians": [{
                "name": f"家长{i}-{p}", "email": f"g{p}.s{i}@bench.kepu.test",
                "language": "zh-CN", "channel": "email"}]}
                for p in range(self.args.guardians)]}
            put = requests.put(f"{self.url}/v1/schools/{school['school_id']}/rosters/"
                               f"{requests.utils.quote('五年级(1)班')}", json=roster,
                               headers={"Authorization": f"Bearer {token}"})
            put.raise_for_status()
            return {"school_id": school["school_id"], "token": token, "index": i}

        with ThreadPoolExecutor(16) as pool:
            schools = list(pool.map(make_school, range(self.args.schools)))
        return {"venue": venue, "sessions": sessions, "schools": schools}

    def burst(self, data: dict[str, Any]) -> dict[str, Any]:
        rng = random.Random(20261123)
        requests_: list[dict[str, Any]] = []
        for school in data["schools"]:
            for session in rng.sample(data["sessions"], self.args.claims_per_school):
                requests_.append({"method": "POST", "path": "/v1/claims", "headers": {
                    "Authorization": f"Bearer {school['token']}",
                    "Idempotency-Key": uuid.uuid4().hex},
                    "body": {"session_id": session["session_id"], "groups": [{
                        "label": "五年级(1)班", "grade": 5, "students": rng.randint(25, 40),
                        "teachers": 2}], "waitlist": rng.random() < 0.7},
                    "school": school["index"], "session": session["session_id"]})
        rng.shuffle(requests_)
        req_file, res_file = self.tmp / "requests.json", self.tmp / "results.json"
        req_file.write_text(json.dumps(requests_))
        load = subprocess.run([sys.executable, "-m", "bench.load", str(req_file), str(res_file),
                               "--url", self.url, "--concurrency", str(self.args.concurrency)],
                              cwd=ROOT, capture_output=True, text=True)
        if load.returncode != 0:
            raise RuntimeError(load.stderr)
        outcome = json.loads(res_file.read_text())
        outcome["requests"] = requests_
        return outcome

    # -- 3. checks ----------------------------------------------------------------------------
    def check(self, data: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
        client = RpcClient(self.stack.env["AMQP_URL"], timeout=30)
        mongo = pymongo.MongoClient(self.stack.env["MONGO_URL"], tz_aware=True)
        oversold = 0
        mismatched_seats = 0
        claims = mongo.kepu_booking.claims
        for session in data["sessions"]:
            seats = client.call("venues", "seats", session["session_id"])
            held = sum(seats["holds"].values())
            oversold += max(0, held - seats["capacity"])
            confirmed = {c["_id"]: c["seats"] for c in claims.find(
                {"session_id": session["session_id"], "status": "confirmed"})}
            mismatched_seats += int(confirmed != seats["holds"])
        lost = 0
        statuses: dict[str, int] = {}
        for result in outcome["results"]:
            body = result["body"] if isinstance(result["body"], dict) else {}
            status = body.get("status")
            statuses[status or f"http {result['status']}"] = statuses.get(
                status or f"http {result['status']}", 0) + 1
            if result["status"] != 201 or status not in ("confirmed", "waitlisted", "rejected"):
                lost += 1
                continue
            stored = claims.find_one({"_id": body["claim_id"]}, {"status": 1})
            if stored is None or stored["status"] != status:
                lost += 1
        client.close()
        mongo.close()
        return {"oversold": oversold, "lost": lost, "sessions_inconsistent": mismatched_seats,
                "statuses": statuses}

    def confirmations(self, data: dict[str, Any], outcome: dict[str, Any]
                      ) -> dict[tuple[int, str], float]:
        """When each (school, trip) claim was confirmed, from the answers."""
        confirmed_at: dict[tuple[int, str], float] = {}
        titles = {s["session_id"]: s["title"] for s in data["sessions"]}
        for req, result in zip(outcome["requests"], outcome["results"], strict=True):
            body = result["body"] if isinstance(result["body"], dict) else {}
            if body.get("status") == "confirmed":
                at = next(h["at"] for h in body["history"] if h["status"] == "confirmed")
                confirmed_at[(req["school"], titles[req["session"]])] = \
                    clock.parse(at).timestamp()
        return confirmed_at

    def wait_for_mails(self, expected: int, sinks: Sinks) -> list[Any]:
        """Every guardian's e-mail, as the sink took it (or what came before the timeout)."""
        deadline = time.monotonic() + self.args.notify_timeout
        while time.monotonic() < deadline and len(sinks.smtp.mails) < expected:
            time.sleep(0.2)
        with sinks.smtp.lock:
            return list(sinks.smtp.mails)

    def notify_latency(self, data: dict[str, Any], confirmed_at: dict[tuple[int, str], float],
                       mails: list[Any]) -> dict[str, Any]:
        """Confirm → arrival per e-mail, matched by recipient and trip title (after the
        costs window: reading the mails parses them, which no claim costs)."""
        titles = [s["title"] for s in data["sessions"]]
        latencies = []
        for mail in mails:
            rcpt = mail.rcpt_tos[0]
            school = int(rcpt.split(".s", 1)[1].split("@", 1)[0])
            trip = trip_in(mail.text, titles)
            if (school, trip) in confirmed_at:
                latencies.append((mail.at - confirmed_at[(school, trip)]) * 1000)
        span = (max(m.at for m in mails) - min(m.at for m in mails)) if len(mails) > 1 else 0
        return {"expected": len(confirmed_at) * self.args.guardians, "received": len(mails),
                "matched": len(latencies),
                "notify_p50_ms": pct(latencies, 50), "notify_p99_ms": pct(latencies, 99),
                "notifications_per_s": len(mails) / span if span else float("nan")}

    def run(self) -> dict[str, Any]:
        clean = False
        with Sinks.running() as sinks:
            try:
                self.start(sinks)
                echo = self.baseline()
                signing_in = {} if self.args.burst_only else identity_bench.measure(
                    self.stack.url, self.stack.env["AMQP_URL"], self.secret)
                data = self.setup()
                costs = costs_bench.Costs(self.stack, OUT, flames=self.args.flamegraphs)
                costs.begin()
                outcome = self.burst(data)
                costs.burst_done()
                ok = [r for r in outcome["results"] if r["status"] == 201]
                lat = [r["ms"] for r in outcome["results"]]
                claims_per_s = len(outcome["results"]) / outcome["wall_s"]
                confirmed_at = self.confirmations(data, outcome)
                mails = self.wait_for_mails(len(confirmed_at) * self.args.guardians, sinks)
                answered = [r["body"].get("status") for r in outcome["results"]
                            if isinstance(r["body"], dict)]
                cost = costs.end(len(outcome["results"]), outcome["cpu_s"],
                                 confirmed=answered.count("confirmed"))
                notify = self.notify_latency(data, confirmed_at, mails)
                # after the costs window: the harness's reads of every claim are no claim's
                # cost (inside it they added ~0.4 ms of the database's CPU per claim)
                checks = self.check(data, outcome)
                lag = monitoring_bench.lag(self.stack.env["MONGO_URL"], outcome["results"])
                family = pages = {}
                if not self.args.burst_only:
                    family = admissions_bench.measure(
                        self.stack.url, self.stack.env["MONGO_URL"], self.stack.env["AMQP_URL"],
                        self.secret, self.args.concurrency)
                    pages = console_bench.measure(
                        self.stack.url, self.stack.env["AMQP_URL"], self.secret,
                        data["venue"]["venue_id"], data["schools"][0]["school_id"],
                        data["sessions"][0]["session_id"])
                clean = not (checks["oversold"] or checks["lost"]
                             or checks["sessions_inconsistent"])
            finally:
                self.stop()
                self.tidy(clean)
        volume = {} if self.args.burst_only else monitoring_bench.volume(
            self.args.monitoring_scale)
        report = {
            **self.report, "rpc_echo_per_s": round(echo, 1),
            "claims": len(outcome["results"]), "claims_ok": len(ok),
            "claims_per_s": round(claims_per_s, 1),
            "claim_p50_ms": round(pct(lat, 50), 1), "claim_p95_ms": round(pct(lat, 95), 1),
            "claim_p99_ms": round(pct(lat, 99), 1),
            "claims_to_echo_ratio": round(claims_per_s / echo, 3),
            "load_generator_cpu_s": round(outcome["cpu_s"], 2),
            "load_generator_wall_s": round(outcome["wall_s"], 2),
            "concurrency": self.args.concurrency, "oversold": checks["oversold"],
            "lost": checks["lost"], "sessions_inconsistent": checks["sessions_inconsistent"],
            "statuses": checks["statuses"],
            **{k: (round(v, 1) if isinstance(v, float) else v) for k, v in notify.items()},
            **cost, **signing_in, **lag, **volume, **pages, **family,
            "measured_at": clock.stamp(),
        }
        return report


def table(report: dict[str, Any]) -> str:
    rows = [("cores", report["cores"]), ("RPC echo, calls/s", report["rpc_echo_per_s"]),
            ("claims sent / answered 201", f"{report['claims']} / {report['claims_ok']}"),
            ("claims/s", report["claims_per_s"]),
            ("claims/s ÷ echo calls/s", report["claims_to_echo_ratio"]),
            ("claim latency p50 / p95 / p99 ms",
             f"{report['claim_p50_ms']} / {report['claim_p95_ms']} / {report['claim_p99_ms']}"),
            ("load generator CPU s / wall s",
             f"{report['load_generator_cpu_s']} / {report['load_generator_wall_s']}"),
            ("seats oversold", report["oversold"]), ("claims lost", report["lost"]),
            ("sessions where booking ≠ venues", report["sessions_inconsistent"]),
            ("claim statuses", report["statuses"]),
            ("e-mails expected / received", f"{report['expected']} / {report['received']}"),
            ("confirm → e-mail p50 / p99 ms",
             f"{report['notify_p50_ms']} / {report['notify_p99_ms']}"),
            ("notifications/s", report["notifications_per_s"]),
            *costs_bench.table(report),
            *costs_bench.targets(report)]
    if "argon2_time_cost" in report:  # not with --burst-only
        rows += [*identity_bench.table(report), *monitoring_bench.table(report),
                 *console_bench.table(report), *admissions_bench.table(report)]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--schools", type=int, default=1000)
    parser.add_argument("--claims-per-school", type=int, default=2)
    parser.add_argument("--capacity", type=int, default=600)
    parser.add_argument("--guardians", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--echo-calls", type=int, default=3000)
    parser.add_argument("--notify-timeout", type=float, default=120)
    parser.add_argument("--no-flamegraphs", dest="flamegraphs", action="store_false",
                        help="skip py-spy during the burst (var/bench/flame-*.svg)")
    parser.add_argument("--monitoring-scale", type=float, default=0.2,
                        help="share of a 300-school district's 5,000 sessions and 50,000 "
                             "claims bench/monitoring.py folds (1.0: about 10 minutes)")
    parser.add_argument("--db-shapes", action="store_true",
                        help="time the database server's CPU per query shape over the burst "
                             "(services/kit/mongo_shapes.py; costs it a few per cent)")
    parser.add_argument("--burst-only", action="store_true",
                        help="only the echo baseline and the claim burst with its costs: no "
                             "sign-in, family, console or monitoring-volume figures (for "
                             "alternated before/after runs)")
    parser.add_argument("--keep-files", action="store_true",
                        help="keep the stack's logs and database files (under the system's "
                             "temporary directory, kepu-bench-*; kept anyway when the run "
                             "fails or finds a seat oversold or a claim lost)")
    args = parser.parse_args()
    report = Bench(args).run()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latest.json").write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(table(report))
    print(f"\nwritten to {OUT / 'latest.json'}")
    family_ok = not (report.get("family_oversold") or report.get("family_lost")
                     or report.get("family_households_twice"))
    return 0 if report["oversold"] == 0 and report["lost"] == 0 and family_ok else 1


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
