"""What one claim costs: database commands, CPU and AMQP messages, measured around the burst.

`make bench` starts its stack with `KEPU_COUNT_DB_COMMANDS=1`, so every Kepu process counts
its MongoDB commands and AMQP messages (services/kit/metrics.py) and writes the totals
under the stack's var/metrics/. `Costs.begin()` snapshots those totals and each process's
CPU time (utime + stime from /proc/<pid>/stat, summed over its process group, so gunicorn's
workers count for the gateway) just before the burst; `Costs.end()` does it again once
every confirmed claim's e-mails have arrived, so the window holds the claims and their
fan-out. Differences divided by the claims sent are the per-claim figures.

RabbitMQ (beam.smp) is the machine's shared broker: its CPU includes any other vhost's
traffic in the window. While the burst runs, py-spy samples booking, venues and the
gateway (non-blocking, 50 Hz, only threads holding the GIL: Python's CPU, not its waits)
for the burst's first PROFILE_S seconds into flame graphs under var/bench/.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pymongo

from bench import yardstick
from services.kit import metrics, mongo_shapes, outbox

TICK = os.sysconf("SC_CLK_TCK")
FLAMES = ("booking", "venues", "gateway")
QUIET_PER_S = 20  # commands a second below which the stack counts as idle (it idles at ~6)
IDLE_S = 5.0  # the idle window before the burst that measures background commands and CPU
PROFILE_S = 20  # py-spy samples the burst's first seconds only: sampling all of it at 100 Hz
# took ~0.5 of a core (163 s of CPU in a 343 s burst) and slowed what it measured
KEPU_EXCLUDES = ("nx-27017", "rabbitmq", "bench harness", "load generator")
# The issue's "claim path": what a claim costs before the guardians' fan-out.
CLAIM_PATH = ("gateway", "booking", "venues", "relay")


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(process group, CPU seconds) of `pid`, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / TICK


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cpu_by_group(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds per named process group, plus RabbitMQ's beam.smp wherever it runs."""
    by_pgid = {pgid: name for name, pgid in groups.items()}
    totals: dict[str, float] = defaultdict(float)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat is None:
            continue
        if stat[0] in by_pgid:
            totals[by_pgid[stat[0]]] += stat[1]
        elif comm(int(entry.name)) == "beam.smp":
            totals["rabbitmq"] += stat[1]
    own = os.times()
    totals["bench harness"] = own.user + own.system
    return dict(totals)


def machine_ticks() -> dict[str, int]:
    """The whole machine's CPU ticks since boot (/proc/stat): busy (user, nice, system,
    interrupts), steal (taken by the hypervisor for other guests) and all of them."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return {}
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return {"busy": user + nice + system + irq + softirq, "steal": steal,
            "all": user + nice + system + idle + iowait + irq + softirq + steal}


def others_on_the_machine(before: dict[str, int], after: dict[str, int], ours_s: float,
                          wall_s: float, cores: int) -> dict[str, float] | None:
    """What else ran while the bench measured: CPU seconds spent outside the stack, the
    harness and the load generator, as a share of the cores, and the steal. A run in which
    either is more than a few per cent measured a shared machine: compare it with nothing."""
    if not before or not after or wall_s <= 0:
        return None
    busy_s = (after["busy"] - before["busy"]) / TICK
    others_s = max(0.0, busy_s - ours_s)
    ticks = max(1, after["all"] - before["all"])
    return {"others_cpu_s": round(others_s, 1),
            "others_share_pct": round(100 * others_s / (wall_s * cores), 1),
            "steal_pct": round(100 * (after["steal"] - before["steal"]) / ticks, 1)}


def process_name(stack_name: str) -> str:
    return {"mongo": "nx-27017", "bench.echo:EchoService": "echo"}.get(stack_name, stack_name)


def counts_by_app(var: Path) -> dict[str, dict[str, dict[str, int]]]:
    """The counters every process wrote, summed per app (the gateway's workers together)."""
    summed: dict[str, dict[str, dict[str, int]]] = {}
    for record in metrics.read_all(var).values():
        app = summed.setdefault(record["app"], {"db": {}, "published": {}, "delivered": {}})
        for part in ("db", "published", "delivered"):
            for key, n in record.get(part, {}).items():
                app[part][key] = app[part].get(key, 0) + n
    return summed


def _diff(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0)}


def _per(n: float, claims: int) -> float:
    return round(n / claims, 2) if claims else float("nan")


class Costs:
    """Snapshots around the burst, py-spy while it runs, and the per-claim arithmetic."""

    def __init__(self, stack: Any, out: Path, flames: bool = True) -> None:
        self.stack = stack
        self.var = Path(stack.env["KEPU_VAR_DIR"])
        self.out = out
        self.py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                                  f"{os.environ.get('PATH', '')}")
        self.flames = flames and self.py_spy is not None
        self.spies: dict[str, subprocess.Popen] = {}
        shapes = stack.env.get(mongo_shapes.ENV)
        self.shapes_file = Path(shapes) if shapes else None
        self.shapes_before: dict[str, list[float]] = {}

    def groups(self) -> dict[str, int]:
        return {process_name(n): p.pid for n, p in self.stack.procs.items()
                if p.poll() is None}

    def snapshot(self) -> dict[str, Any]:
        asked = metrics.request_totals(self.var)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # every counting process has answered (or is hung)
            time.sleep(metrics.FLUSH_S)
            records = metrics.read_all(self.var).values()
            if records and all(r["at"] >= asked for r in records):
                break
        return {"at": time.monotonic(), "cpu": cpu_by_group(self.groups()),
                "counts": counts_by_app(self.var), "machine": machine_ticks()}

    def drained(self, timeout: float = 90.0) -> bool:
        """Wait until no outbox holds unpublished events (setup's fan-out has settled), so
        the idle window measures pollers and sweeps, not the tail of the setup."""
        prefix = self.stack.env.get("KEPU_DB_PREFIX", "kepu") + "_"
        client = pymongo.MongoClient(self.stack.env["MONGO_URL"])
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not outbox.unrelayed(client, prefix):
                    return True
                time.sleep(0.5)
            return False
        finally:
            client.close()

    def quiet(self, timeout: float = 90.0) -> bool:
        """Wait until the consumers have worked off setup's events too: monitoring's archive
        holds nothing unfolded (it folds on a timer) and, relay aside, the stack sends fewer
        than QUIET_PER_S commands a second (identity and monitoring work through 1,000
        `school_registered` events after the outboxes are empty)."""
        client = pymongo.MongoClient(self.stack.env["MONGO_URL"])
        archive = client[self.stack.env.get("KEPU_DB_PREFIX", "kepu") + "_monitoring"].archive
        deadline = time.monotonic() + timeout
        try:
            last = self.snapshot()
            while time.monotonic() < deadline:
                time.sleep(1.0)
                now = self.snapshot()
                sent = sum(sum(_diff(counts["db"], last["counts"].get(app, {"db": {}})["db"])
                               .values()) for app, counts in now["counts"].items()
                           if app != "relay")
                rate = sent / max(now["at"] - last["at"], 1e-3)
                if rate < QUIET_PER_S and archive.find_one({"folded_at": 0}) is None:
                    return True
                last = now
            return False
        finally:
            client.close()

    def begin(self) -> None:
        """Once setup's events are out and worked off, snapshot twice IDLE_S apart (the
        stack's own background: pollers, sweeps), then start the window and the profilers."""
        self.settled = self.drained() and self.quiet()
        self.idle = self.snapshot()
        idle_yardstick = yardstick.Sampler().start()
        time.sleep(IDLE_S)
        self.yardstick_idle = idle_yardstick.stop()
        self.before = self.snapshot()
        self.yardstick = yardstick.Sampler().start()
        if self.shapes_file:
            self.shapes_before = mongo_shapes.read(self.shapes_file)
        if self.flames:
            self.out.mkdir(parents=True, exist_ok=True)
            for name in FLAMES:
                proc = self.stack.procs.get(name)
                if proc is None:
                    continue
                cmd = [str(self.py_spy), "record", "--nonblocking", "--gil", "--rate", "50",
                       "--duration", str(PROFILE_S), "--format", "flamegraph",
                       "-o", str(self.out / f"flame-{name}.svg"),
                       "--pid", str(proc.pid)]
                cmd += ["--subprocesses"] if name == "gateway" else []
                self.spies[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.PIPE)

    def burst_done(self) -> None:
        """Stop the profilers: the flame graphs show the burst, not the e-mail wait."""
        self.spy_cpu_s = 0.0
        for spy in self.spies.values():
            stat = proc_stat(spy.pid)
            self.spy_cpu_s += stat[1] if stat else 0.0
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)
        for name, spy in self.spies.items():
            try:
                _, err = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                err = b"timed out writing"
            if spy.returncode not in (0, -signal.SIGINT):
                print(f"py-spy {name}: {err.decode(errors='replace')[-300:]}")

    def background(self) -> dict[str, dict[str, float]]:
        """Per second of the idle window: db commands by app, CPU ms by process."""
        span = self.before["at"] - self.idle["at"]
        db = {}
        for app, now in self.before["counts"].items():
            then = self.idle["counts"].get(app, {"db": {}})
            n = sum(_diff(now["db"], then["db"]).values())
            if n:
                db[app] = round(n / span, 2)
        cpu = {name: round((s - self.idle["cpu"].get(name, 0.0)) * 1000 / span, 1)
               for name, s in self.before["cpu"].items()}
        return {"db_commands": dict(sorted(db.items(), key=lambda kv: -kv[1])),
                "cpu_ms": dict(sorted(cpu.items(), key=lambda kv: -kv[1]))}

    def end(self, claims: int, load_cpu_s: float, confirmed: int = 0) -> dict[str, Any]:
        in_window = self.yardstick.stop()
        after = self.snapshot()
        wall = after["at"] - self.before["at"]
        cpu = {name: (s - self.before["cpu"].get(name, 0.0)) * 1000
               for name, s in after["cpu"].items()}
        cpu["load generator"] = load_cpu_s * 1000
        by_process = {k: _per(v, claims) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])}
        kepu = sum(v for k, v in cpu.items() if k not in KEPU_EXCLUDES)
        db_by_kind: dict[str, dict[str, float]] = {}
        published: dict[str, int] = defaultdict(int)
        delivered: dict[str, int] = defaultdict(int)
        for app, now in after["counts"].items():
            then = self.before["counts"].get(app, {"db": {}, "published": {}, "delivered": {}})
            db = _diff(now["db"], then["db"])
            if db:
                db_by_kind[app] = {k: _per(n, claims)
                                   for k, n in sorted(db.items(), key=lambda kv: -kv[1])}
            for key, n in _diff(now["published"], then["published"]).items():
                published[key] += n
            for key, n in _diff(now["delivered"], then["delivered"]).items():
                delivered[key] += n
        db_by_service = {app: round(sum(kinds.values()), 2) for app, kinds in sorted(
            db_by_kind.items(), key=lambda kv: -sum(kv[1].values()))}
        flames = {name: str((self.out / f"flame-{name}.svg").relative_to(self.out.parents[1]))
                  for name in self.spies if (self.out / f"flame-{name}.svg").exists()}
        path = sum(v for app, v in db_by_service.items() if app in CLAIM_PATH)
        fanout = db_by_service.get("notifications", 0.0) * claims
        return {
            "costs_window_s": round(wall, 1),
            "claim_path_commands_per_claim": round(path, 2),
            "fanout_commands_per_confirmed_claim": (round(fanout / confirmed, 2)
                                                    if confirmed else None),
            "db_commands_per_claim": {"total": round(sum(db_by_service.values()), 2),
                                      "by_service": db_by_service, "by_kind": db_by_kind},
            "cpu_ms_per_claim": {"total": _per(sum(cpu.values()), claims),
                                 "kepu_processes": _per(kepu, claims),
                                 "by_process": by_process},
            "amqp_messages_per_claim": {
                "published": _per(sum(published.values()), claims),
                "delivered": _per(sum(delivered.values()), claims),
                "published_by_kind": {k: _per(n, claims) for k, n in sorted(
                    published.items(), key=lambda kv: -kv[1])},
                "delivered_by_kind": {k: _per(n, claims) for k, n in sorted(
                    delivered.items(), key=lambda kv: -kv[1])}},
            "background_per_s": {**self.background(), "setup_drained": self.settled},
            "machine_in_window": others_on_the_machine(
                self.before["machine"], after["machine"], sum(cpu.values()) / 1000, wall,
                os.cpu_count() or 1),
            "yardstick_ms": {"idle": yardstick.median_of(self.yardstick_idle),
                             "window": yardstick.median_of(in_window),
                             "window_samples": len(in_window)},
            "flame_graphs": flames,
            "profiler_cpu_s": round(getattr(self, "spy_cpu_s", 0.0), 2),
            **({"db_shapes": mongo_shapes.costliest(self.shapes_before,
                                                    mongo_shapes.read(self.shapes_file))}
               if self.shapes_file else {}),
        }


def beyond_background(report: dict[str, Any]) -> tuple[float, float]:
    """Per-claim db commands and Kepu CPU ms less what the idle rate would have cost over
    the window: the claim-driven part (pollers and sweeps scale with wall time, not claims;
    the idle rate is a lower bound of theirs under load, so this is an upper bound)."""
    bg, claims = report["background_per_s"], report["claims"]
    window = report["costs_window_s"]
    db = report["db_commands_per_claim"]["total"] - sum(bg["db_commands"].values()) \
        * window / claims
    kepu = sum(v for k, v in bg["cpu_ms"].items() if k not in KEPU_EXCLUDES)
    cpu = report["cpu_ms_per_claim"]["kepu_processes"] - kepu * window / claims
    return round(db, 2), round(cpu, 2)


def _top(mapping: dict[str, float], n: int) -> str:
    return ", ".join(f"{k} {v}" for k, v in list(mapping.items())[:n])


def table(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """Rows for bench/run.py's table (none if the run did not measure costs)."""
    db = report.get("db_commands_per_claim")
    if not db:
        return []
    cpu, amqp = report["cpu_ms_per_claim"], report["amqp_messages_per_claim"]
    rows: list[tuple[str, Any]] = [
        ("db commands per claim", f"{db['total']} ({_top(db['by_service'], 8)})")]
    if "background_per_s" in report:
        bg = report["background_per_s"]
        rows += [("  idle stack: db commands/s", _top(bg["db_commands"], 8)),
                 ("  beyond idle: db commands / Kepu CPU ms per claim",
                  " / ".join(map(str, beyond_background(report))))]
    for app, kinds in db["by_kind"].items():
        rows.append((f"  {app}", _top(kinds, 6)))
    rows += [("CPU ms per claim, all / Kepu's own", f"{cpu['total']} / {cpu['kepu_processes']}"),
             ("  by process", _top(cpu["by_process"], 12)),
             ("AMQP messages per claim, published / delivered",
              f"{amqp['published']} / {amqp['delivered']}"),
             ("  published", _top(amqp["published_by_kind"], 8)),
             ("flame graphs", ", ".join(report.get("flame_graphs", {}).values()) or "none")]
    machine = report.get("machine_in_window")
    if machine:
        rows.append(("machine in the window: others' CPU s (share of the cores) / steal",
                     f"{machine['others_cpu_s']} ({machine['others_share_pct']} %) / "
                     f"{machine['steal_pct']} %"))
    stick = report.get("yardstick_ms")
    if stick and stick["idle"] and stick["window"]:
        rows.append(("yardstick: fixed work, CPU ms at idle / in the window (bench/yardstick.py)",
                     f"{stick['idle']} / {stick['window']} "
                     f"(× {stick['window'] / stick['idle']:.2f})"))
    if report.get("db_shapes") is not None:
        rows.append(("database CPU by query shape (ms in all, calls, µs each)",
                     "" if report["db_shapes"] else "none recorded"))
        rows += [(f"  {row['cpu_ms']} ms, {row['calls']} × {row['cpu_us_per_call']} µs",
                  row["shape"][:160]) for row in report["db_shapes"][:10]]
    return rows


def targets(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """The issue's bars beside this run's figures (a benchmark's report, never a test)."""
    if "claim_path_commands_per_claim" not in report:
        return []
    _, kepu_cpu = beyond_background(report) if "background_per_s" in report else (0, None)
    return [("claim path db commands per claim: gateway, booking, venues, relay, all in "
             "the window (target ≤ 6)", report["claim_path_commands_per_claim"]),
            ("fan-out db commands per confirmed claim (target ≤ 3 + 1 per batch)",
             report["fanout_commands_per_confirmed_claim"]),
            ("Kepu CPU ms per claim, beyond idle (target ≤ 10)", kepu_cpu)]
