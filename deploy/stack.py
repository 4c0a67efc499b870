"""The local stack: MongoDB stand-in, every service, the outbox relay and the gateway.

    python -m deploy.stack run    # foreground (deploy/supervisor.py); Ctrl-C stops everything
    python -m deploy.stack up     # the same in the background; returns once /healthz is ok
    python -m deploy.stack down   # stops what `up` or `run` started, and only that

The services are those registered in services/kit/services.py. `Stack` is the same set of
processes for tests and benchmarks, each one startable, killable and restartable on its own.

Everything the stack writes under var/ is private to its owner (directories 0700, files
0600), and no file gets a token: the welcome line with demo tokens goes to the terminal of
`make run` only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from deploy.private import open_private, private_dir, write_private
from deploy.procs import Tracked, group_members
from services.kit import services as registry

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("KEPU_VAR_DIR", ROOT / "var"))
PASS_THROUGH = ("SMTP_HOST", "SMTP_PORT", "SMTP_FROM", "SMS_WEBHOOK_URL", "WECHAT_WEBHOOK_URL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


@contextmanager
def private_mongo(data_dir: Path) -> Iterator[str]:
    """A throwaway nx-27017 on a free port with its data in `data_dir` (tests, benches);
    yields its URL and stops it afterwards."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "mongo.log", "ab")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen([sys.executable, "-m", "services.kit.mongo_server", "--host",
                             "127.0.0.1", "-p", str(port), "--data-dir", str(data_dir)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_port(port)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def command(name: str, env: dict[str, str]) -> list[str]:
    py = sys.executable
    if name == "mongo":
        return [py, "-m", "services.kit.mongo_server", "--host", "127.0.0.1",
                "-p", env["KEPU_MONGO_PORT"], "--data-dir", env["KEPU_MONGO_DIR"]]
    if name in registry.SERVICES:
        return [py, "-m", "services.kit.runner", name]
    if name == "relay":
        return [py, "-m", "services.kit.relay"]
    if name == "gateway":  # the API, with the console at / on the same origin (console/front.py)
        return [py, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                "services.console.one_origin:application"]
    if "." in name or ":" in name:  # an extra service, e.g. a test probe
        return [py, "-m", "services.kit.runner", name]
    raise KeyError(name)


def stack_env(base: dict[str, str] | None = None, *, var: Path = VAR,
              gateway_port: int | None = None) -> dict[str, str]:
    """The environment every process of one stack shares."""
    from services.kit.config import Settings

    env = dict(os.environ if base is None else base)
    env.setdefault("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    if not env.get("MONGO_URL"):
        port = int(env.get("KEPU_MONGO_PORT") or (27017 if port_free(27017) else free_port()))
        env["KEPU_MONGO_PORT"] = str(port)
        env["KEPU_MONGO_DIR"] = env.get("KEPU_MONGO_DIR") or str(var / "mongo")
        env["MONGO_URL"] = f"mongodb://127.0.0.1:{port}"
        env["KEPU_LOCAL_MONGO"] = "1"
    if gateway_port is None:
        wanted = int(env.get("KEPU_PORT", "8080"))
        gateway_port = wanted if port_free(wanted) else free_port()
    env["KEPU_PORT"] = str(gateway_port)
    env["KEPU_GATEWAY_BIND"] = f"127.0.0.1:{gateway_port}"
    env["KEPU_URL"] = f"http://127.0.0.1:{gateway_port}"
    env["KEPU_VAR_DIR"] = str(var)
    env.setdefault("KEPU_JWT_SECRET", Settings.from_env(env).jwt_secret)
    env.setdefault("KEPU_STACK_ID", uuid.uuid4().hex)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def wait_healthy(url: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            response = requests.get(f"{url}/healthz", timeout=10)
            last = response.json()
            if response.status_code == 200:
                return last
        except (requests.RequestException, ValueError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise TimeoutError(f"{url}/healthz not ok after {timeout:.0f}s: {last}")


def stack_processes_for(env: dict[str, str]) -> list[str]:
    """The processes of a stack, in start order: all services, or those KEPU_SERVICES names."""
    mongo = ["mongo"] if env.get("KEPU_LOCAL_MONGO") else []
    return [*mongo, *registry.selected(env), "relay", "gateway"]


class Stack:
    """One stack's processes, each in its own process group with its log in `log_dir`."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.names = stack_processes_for(env)
        self.procs: dict[str, subprocess.Popen] = {}
        private_dir(log_dir)

    @property
    def url(self) -> str:
        return self.env["KEPU_URL"]

    def start(self, name: str, extra_env: dict[str, str] | None = None,
              instance: str | None = None) -> subprocess.Popen:
        """Start process `name`; `instance` names another replica of it, e.g. "relay-2"."""
        key = instance or name
        if key in self.procs and self.procs[key].poll() is None:
            raise RuntimeError(f"{key} is already running")
        log = open_private(self.log_dir / f"{key.replace(':', '_')}.log")
        proc = subprocess.Popen(command(name, self.env), cwd=ROOT,
                                env={**self.env, **(extra_env or {})},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs[key] = proc
        if name == "mongo":
            wait_port(int(self.env["KEPU_MONGO_PORT"]))
        return proc

    def start_all(self) -> None:
        for name in self.names:
            self.start(name)

    def signal(self, name: str, sig: int) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would: nothing gets to clean up."""
        self.signal(name, signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def stop(self, name: str, timeout: float = 25.0) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        self.signal(name, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(name, signal.SIGKILL)
            proc.wait(timeout=10)

    def restart(self, name: str, extra_env: dict[str, str] | None = None) -> None:
        self.stop(name)
        self.start(name, extra_env)

    def wait_healthy(self, timeout: float = 90.0) -> dict[str, Any]:
        return wait_healthy(self.url, timeout)

    def close(self) -> None:
        order = [n for n in reversed(list(self.procs)) if n != "mongo"]
        for name in order:
            self.signal(name, signal.SIGTERM)
        for name in order:
            self.stop(name)
        self.stop("mongo")


# -- foreground and background ------------------------------------------------------------
PID_FILE, ENV_FILE, INFO_FILE = "stack.pids", "stack.env", "stack.json"


def run(demo: bool = True, tokens: bool = True, var: Path = VAR) -> int:
    """The stack in the foreground until Ctrl-C (or SIGTERM from `down`)."""
    from deploy.supervisor import Supervisor

    private_dir(var)
    env = stack_env(var=var)
    supervisor = Supervisor(env, ROOT, var / "log", var / PID_FILE)
    supervisor.install_signals()
    try:
        for name in stack_processes_for(env):
            ready = (lambda: not port_free(int(env["KEPU_MONGO_PORT"]))) \
                if name == "mongo" else None
            supervisor.start(name, command(name, env), ready=ready)
        welcome = [sys.executable, "-m", "deploy.demo", "--url", env["KEPU_URL"]]
        welcome += [] if demo else ["--no-data"]
        welcome += ["--tokens"] if tokens else []
        supervisor.start("welcome", welcome, log=False, oneshot=True)  # terminal only
        write_private(var / INFO_FILE, json.dumps({k: env[k] for k in (
            "KEPU_URL", "AMQP_URL", "MONGO_URL", "KEPU_STACK_ID")}))
        reason = supervisor.loop()
        supervisor.say("stack", f"stopping ({reason})")
    finally:
        supervisor.close()
        (var / INFO_FILE).unlink(missing_ok=True)
    return 0


def _read_pids(var: Path) -> dict[str, Any] | None:
    try:
        return json.loads((var / PID_FILE).read_text())
    except (OSError, ValueError):
        return None


def _supervisor(var: Path) -> Tracked | None:
    """The running supervisor of the stack in `var`, if its pid file names a live one."""
    pids = _read_pids(var)
    if not pids:
        return None
    tracked = Tracked("supervisor", *pids["supervisor"])
    return tracked if tracked.alive() else None


def up(timeout: float = 120.0, var: Path = VAR) -> int:
    """The stack in the background: returns once /healthz is ok. Its output goes to
    var/log/stack.log (0600), which never holds a token (the welcome line prints none)."""
    env_file = var / ENV_FILE
    private_dir(var)
    running = _supervisor(var)
    if running is not None and env_file.exists():
        print(f"the stack is already up (pid {running.pid}); see {env_file}")
        return 0
    info_file = var / INFO_FILE
    info_file.unlink(missing_ok=True)
    with open_private(var / "log" / "stack.log") as log:
        proc = subprocess.Popen([sys.executable, "-m", "deploy.stack", "run", "--no-tokens"],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "KEPU_VAR_DIR": str(var)})
    deadline = time.monotonic() + timeout
    while not info_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            print(f"the stack did not start; see {var / 'log' / 'stack.log'}", file=sys.stderr)
            down(var)
            return 1
        time.sleep(0.1)
    info = json.loads(info_file.read_text())
    try:
        wait_healthy(info["KEPU_URL"], max(5.0, deadline - time.monotonic()))
    except TimeoutError as exc:
        print(f"{exc}\nsee {var / 'log' / 'stack.log'}", file=sys.stderr)
        down(var)
        return 1
    write_private(env_file, "".join(f"{k}={v}\n" for k, v in info.items()))
    print(f"Kepu is up at {info['KEPU_URL']} (pid {proc.pid}); settings in {env_file}\n"
          "a bearer token: .venv/bin/python -m services.kit.cli token --role admin")
    return 0


def stack_members(var: Path = VAR) -> list[Tracked]:
    """The stack's processes: the supervisor and the children its pid file records (each
    only while its start time still matches), and the rest of the supervisor's process
    group when it leads one (`up` starts it in a session of its own)."""
    pids = _read_pids(var)
    if not pids:
        return []
    supervisor = Tracked("supervisor", *pids["supervisor"])
    members = [supervisor] + [Tracked(name, pid, started)
                              for name, (pid, started) in pids.get("children", {}).items()]
    if supervisor.alive() and pids.get("pgid") == supervisor.pid:
        known = {m.pid for m in members}
        members += [m for m in group_members(supervisor.pid, supervisor.started)
                    if m.pid not in known]
    return [m for m in members if m.alive()]


def down(var: Path = VAR, timeout: float = 40.0) -> int:
    """Stop the stack in `var`: SIGTERM its supervisor (which stops its children in turn),
    then SIGKILL whatever of the stack's own processes is left. Nothing else is touched:
    not a shell that sourced var/stack.env, not a process that reuses a recorded pid."""
    members = stack_members(var)
    if not members:
        print("the stack is not up")
    else:
        supervisor = next((m for m in members if m.name == "supervisor"), None)
        for member in [supervisor] if supervisor else members:
            member.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(m.alive() for m in members) and time.monotonic() < deadline:
            time.sleep(0.2)
        for member in members:
            member.signal(signal.SIGKILL)
        print("the stack is down")
    for name in (PID_FILE, ENV_FILE, INFO_FILE):
        (var / name).unlink(missing_ok=True)
    return 0


def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "run":
        return run(demo="--no-demo" not in sys.argv, tokens="--no-tokens" not in sys.argv)
    if action == "up":
        return up()
    if action == "down":
        return down()
    print("usage: python -m deploy.stack run|up|down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
