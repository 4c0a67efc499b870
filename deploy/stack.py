"""The local stack: MongoDB stand-in, every service, the outbox relay and the gateway.

    python -m deploy.stack run    # foreground under honcho; Ctrl-C stops everything
    python -m deploy.stack up     # the same in the background; returns once /healthz is ok
    python -m deploy.stack down   # stops what `up` started, and only that

`Stack` is the same set of processes for tests and benchmarks, each one startable,
killable and restartable on its own.
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
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("KEPU_VAR_DIR", ROOT / "var"))
SERVICES = ("venues", "booking", "notifications", "funding")
PROCESSES = ("mongo", *SERVICES, "relay", "gateway")
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


def command(name: str, env: dict[str, str]) -> list[str]:
    py = sys.executable
    if name == "mongo":
        return [py, "-m", "services.kit.mongo_server", "--host", "127.0.0.1",
                "-p", env["KEPU_MONGO_PORT"], "--data-dir", env["KEPU_MONGO_DIR"]]
    if name in SERVICES:
        return [py, "-m", "services.kit.runner", name]
    if name == "relay":
        return [py, "-m", "services.kit.relay"]
    if name == "gateway":
        return [py, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                "services.gateway.wsgi:application"]
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
    """The processes of a stack: all services, or those KEPU_SERVICES names."""
    wanted = env.get("KEPU_SERVICES", ",".join(SERVICES)).split(",")
    return [p for p in PROCESSES
            if (p not in SERVICES or p in wanted) and (p != "mongo" or env.get("KEPU_LOCAL_MONGO"))]


class Stack:
    """One stack's processes, each in its own process group with its log in `log_dir`."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.names = stack_processes_for(env)
        self.procs: dict[str, subprocess.Popen] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return self.env["KEPU_URL"]

    def start(self, name: str, extra_env: dict[str, str] | None = None,
              instance: str | None = None) -> subprocess.Popen:
        """Start process `name`; `instance` names another replica of it, e.g. "relay-2"."""
        key = instance or name
        if key in self.procs and self.procs[key].poll() is None:
            raise RuntimeError(f"{key} is already running")
        log = open(self.log_dir / f"{key.replace(':', '_')}.log", "ab")  # noqa: SIM115
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
def run(demo: bool = True) -> int:
    from honcho.manager import Manager

    env = stack_env()
    VAR.mkdir(parents=True, exist_ok=True)
    manager = Manager()
    for name in stack_processes_for(env):
        manager.add_process(name, " ".join(_quote(a) for a in command(name, env)), env=env,
                            cwd=str(ROOT))
    welcome = [sys.executable, "-m", "deploy.demo", "--url", env["KEPU_URL"]]
    if not demo:
        welcome.append("--no-data")
    manager.add_process("welcome", " ".join(_quote(a) for a in welcome), env=env, cwd=str(ROOT))
    (VAR / "stack.json").write_text(json.dumps({k: env[k] for k in (
        "KEPU_URL", "AMQP_URL", "MONGO_URL", "KEPU_STACK_ID")}))
    manager.loop()
    return manager.returncode or 0


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def up(timeout: float = 120.0) -> int:
    pid_file, env_file = VAR / "stack.pid", VAR / "stack.env"
    VAR.mkdir(parents=True, exist_ok=True)
    if pid_file.exists() and _alive(int(pid_file.read_text())) and env_file.exists():
        print(f"the stack is already up (pid {pid_file.read_text().strip()}); see {env_file}")
        return 0
    (VAR / "log").mkdir(exist_ok=True)
    log = open(VAR / "log" / "stack.log", "ab")  # noqa: SIM115
    stale = VAR / "stack.json"
    stale.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "deploy.stack", "run"], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while not stale.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            print(f"the stack did not start; see {VAR / 'log' / 'stack.log'}", file=sys.stderr)
            down()
            return 1
        time.sleep(0.1)
    info = json.loads(stale.read_text())
    try:
        wait_healthy(info["KEPU_URL"], max(5.0, deadline - time.monotonic()))
    except TimeoutError as exc:
        print(f"{exc}\nsee {VAR / 'log' / 'stack.log'}", file=sys.stderr)
        down()
        return 1
    env_file.write_text("".join(f"{k}={v}\n" for k, v in info.items()))
    print(f"Kepu is up at {info['KEPU_URL']} (pid {proc.pid}); settings in {env_file}")
    return 0


def down() -> int:
    pid_file = VAR / "stack.pid"
    if not pid_file.exists():
        print("the stack is not up")
        return 0
    pid = int(pid_file.read_text())
    stack_id = ""
    if (VAR / "stack.json").exists():
        stack_id = json.loads((VAR / "stack.json").read_text()).get("KEPU_STACK_ID", "")
    if _alive(pid):
        os.killpg(pid, signal.SIGTERM)  # honcho stops its children in turn
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
    for leftover in pids_of_stack(stack_id):  # only if honcho itself could not stop them
        try:
            os.kill(leftover, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name in ("stack.pid", "stack.env", "stack.json"):
        (VAR / name).unlink(missing_ok=True)
    print("the stack is down")
    return 0


def pids_of_stack(stack_id: str) -> list[int]:
    """Processes started by the stack with this id (they carry KEPU_STACK_ID in their env)."""
    if not stack_id:
        return []
    marker = f"KEPU_STACK_ID={stack_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def main() -> int:
    action = sys.argv[1] if len(sys.argv) > 1 else ""
    if action == "run":
        return run(demo="--no-demo" not in sys.argv)
    if action == "up":
        return up()
    if action == "down":
        return down()
    print("usage: python -m deploy.stack run|up|down", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
