"""CPU per RPC hop inside Kepu's services: what nameko, kombu and eventlet cost per message.

One claim crosses service boundaries the way `caller.relay` does here: a call arrives at a
service (consume, signature check, worker, reply) and that worker calls another service
through `ServiceClient` (publish, wait for the reply). The benchmark starts
`bench.echo:EchoService` and `CallerService` with Kepu's runner on a private vhost, drives
`caller.relay(claim)` from N threads through the gateway's pooled client, and reads both
service processes' CPU (utime + stime from /proc) around the timed calls.

    .venv/bin/python -m bench.rpc_cost --calls 3000 --concurrency 24 [--profile DIR]
    .venv/bin/python -m bench.rpc_cost --nameko   # the same, with nameko's own Rpc/RpcProxy

The driver's own CPU is the gateway's share and is reported apart, not in the total.
`--nameko` is the "before" of the kit's RPC (services.kit.rpc): alternate the two.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nameko.rpc import rpc

from services.kit.rpc_proxy import ServiceClient

ROOT = Path(__file__).resolve().parent.parent
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")

# about what booking forwards to venues for one claim
CLAIM = {
    "session_id": "ses_01HZX3Q9J5W8K2M4N6P8R0T2V4",
    "venue_id": "ven_01HZX3Q9J5W8K2M4N6P8R0T2V5",
    "claim_id": "clm_01HZX3Q9J5W8K2M4N6P8R0T2V6",
    "request_key": "rk-" + "7f3a" * 8,
    "org_id": "org_01HZX3Q9J5W8K2M4N6P8R0T2V7",
    "actor": {"id": "usr_01HZX3Q9J5W8K2M4N6P8R0T2V8", "role": "teacher",
              "org": "org_01HZX3Q9J5W8K2M4N6P8R0T2V7"},
    "groups": [{"label": f"五年级({i})班", "grade": 5, "students": 30 + i, "teachers": 2,
                "contact": {"name": "王老师", "phone": "+86 138 0000 00%02d" % i}}
               for i in range(1, 5)],
    "notes": "需要无障碍通道；午餐自带。",
    "requested_at": "2026-12-02T03:00:00+00:00",
}


class CallerService:
    """A service whose RPC calls another service once, as booking calls venues."""

    name = "caller"
    max_workers = 32
    echo = ServiceClient("echo")

    @rpc
    def relay(self, payload: Any) -> Any:
        return self.echo.echo(payload)

    @rpc
    def ping(self) -> dict[str, Any]:
        return {"service": self.name, "ok": True}


def use_nameko_rpc() -> None:
    """Undo the kit's RPC in this process: nameko's `Rpc` entrypoints and `RpcProxy`."""
    from nameko import rpc as nameko_rpc

    from services.kit import container
    from services.kit import rpc as kit_rpc

    container.kit_entrypoint = lambda entrypoint: entrypoint
    kit_rpc.RpcProxy.setup = nameko_rpc.RpcProxy.setup
    kit_rpc.RpcProxy.get_dependency = nameko_rpc.RpcProxy.get_dependency


SERVE = ("import services.kit.runner as runner, bench.rpc_cost as bench, sys; "
         "{patch}runner.run(sys.argv[1:])")


def cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_MS  # utime, stime


def self_cpu_ms() -> float:
    t = os.times()
    return (t.user + t.system) * 1000


def wait_ready(client: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    for service in ("echo", "caller"):
        while True:
            try:
                client.call(service, "ping", timeout=2)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def measure(amqp_url: str, calls: int, concurrency: int, profile: Path | None,
            nameko: bool = False) -> dict[str, Any]:
    from services.kit.rpc_client import RpcClient

    env = {**os.environ, "AMQP_URL": amqp_url, "KEPU_LOG_LEVEL": "WARNING",
           "KEPU_JWT_SECRET": "bench-" + uuid.uuid4().hex,
           "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    logs = Path(tempfile.mkdtemp(prefix="rpc-cost-"))
    serve = SERVE.format(patch="bench.use_nameko_rpc(); " if nameko else "")
    procs = {name: subprocess.Popen(
        [sys.executable, "-c", serve, target], cwd=ROOT, env=env,
        stdout=(logs / f"{name}.log").open("w"), stderr=subprocess.STDOUT)
        for name, target in (("echo", "bench.echo:EchoService"),
                             ("caller", "bench.rpc_cost:CallerService"))}
    client = RpcClient(amqp_url, timeout=30)
    spies: list[subprocess.Popen] = []
    try:
        wait_ready(client)
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda _: client.call("caller", "relay", CLAIM), range(300)))
            if profile:
                profile.mkdir(parents=True, exist_ok=True)
                spies = [subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "-p",
                     str(p.pid), "-o", str(profile / f"{n}.{fmt}"), "-f", fmt, "-r", "200"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    for n, p in procs.items() for fmt in ("raw",)]
                time.sleep(1)
            before = {n: cpu_ms(p.pid) for n, p in procs.items()}
            driver_before = self_cpu_ms()
            started = time.perf_counter()
            results = list(pool.map(lambda _: client.call("caller", "relay", CLAIM),
                                    range(calls)))
            elapsed = time.perf_counter() - started
            after = {n: cpu_ms(p.pid) for n, p in procs.items()}
            driver = self_cpu_ms() - driver_before
        assert all(r == CLAIM for r in results), "echo changed the payload"
    finally:
        for spy in spies:
            spy.send_signal(2)
            spy.wait(30)
        client.close()
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    shutil.rmtree(logs, ignore_errors=True)  # kept only when the run failed
    per_call = {n: (after[n] - before[n]) / calls for n in procs}
    return {"rpc": "nameko" if nameko else "kit", "calls": calls, "concurrency": concurrency,
            "calls_per_s": round(calls / elapsed, 1),
            "caller_cpu_ms_per_call": round(per_call["caller"], 3),
            "echo_cpu_ms_per_call": round(per_call["echo"], 3),
            "services_cpu_ms_per_call": round(sum(per_call.values()), 3),
            "driver_cpu_ms_per_call": round(driver / calls, 3),
            "payload_bytes": len(json.dumps(CLAIM, ensure_ascii=False).encode())}


def main() -> None:
    from deploy import broker as broker_admin

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=24)
    parser.add_argument("--profile", type=Path, help="py-spy collapsed stacks into DIR")
    parser.add_argument("--nameko", action="store_true",
                        help="run the services with nameko's own Rpc and RpcProxy (before)")
    args = parser.parse_args()
    vhost = f"kepu-bench-rpc-{os.getpid()}"
    broker_admin.create_vhost(vhost)
    try:
        url = broker_admin.vhost_url(os.environ.get("AMQP_URL", broker_admin.DEFAULT), vhost)
        print(json.dumps(measure(url, args.calls, args.concurrency, args.profile,
                                 args.nameko)))
    finally:
        broker_admin.delete_vhost(vhost)


if __name__ == "__main__":
    main()
