"""The development stack's process handling: children never outlive the supervisor, `down`
stops the stack's own processes and nothing else, and nothing private is world-readable.

These start the real supervisor (deploy/supervisor.py) with small stand-in children, so
they run in seconds without a broker or database.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy import stack
from deploy.procs import Tracked, start_time
from deploy.stack import ROOT

SLEEPER = f"{sys.executable} -c 'import time; time.sleep(600)'"
# Ignores SIGINT like a child that missed the terminal's Ctrl-C: only its supervisor stops it.
STUBBORN = (f"{sys.executable} -c 'import signal, time; "
            "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)'")


def wait_for(condition: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or condition}")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen]]:
    """Processes a test starts; whatever is left is killed afterwards."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_supervisor(var: Path, procs: list[subprocess.Popen], *children: str,
                     stdout: int | None = subprocess.DEVNULL, new_session: bool = True,
                     env: dict[str, str] | None = None) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, "-m", "deploy.supervisor", "--pid-file",
                             str(var / stack.PID_FILE), "--log-dir", str(var / "log"),
                             *children], cwd=ROOT, stdout=stdout, stderr=subprocess.DEVNULL,
                            start_new_session=new_session, env={**os.environ, **(env or {})})
    procs.append(proc)
    names = {c.partition("=")[0] for c in children}

    def recorded() -> dict | None:
        try:
            pids = json.loads((var / stack.PID_FILE).read_text())
        except (OSError, ValueError):
            return None
        return pids if set(pids["children"]) == names else None

    pids = wait_for(recorded, what="the pid file to list every child")
    return proc, pids["children"]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_children_never_outlive_a_supervisor_whose_stdout_is_gone(tmp_path, started, stop):
    # `make run | tee run.log`, then Ctrl-C: tee is gone before the supervisor says anything.
    supervisor, children = start_supervisor(
        tmp_path, started, f"a={STUBBORN}", f"b={STUBBORN}", stdout=subprocess.PIPE)
    supervisor.stdout.close()
    pids = [pid for pid, _ in children.values()]
    assert all(alive(pid) for pid in pids)
    try:
        os.kill(supervisor.pid, stop)
        wait_for(lambda: not any(alive(pid) for pid in pids), what="every child to end")
        supervisor.wait(timeout=30)
    finally:  # on failure, leave no orphan behind
        for name, (pid, started_at) in children.items():
            Tracked(name, pid, started_at).signal(signal.SIGKILL)


def test_down_stops_the_stack_and_spares_a_process_with_the_stack_environment(
        tmp_path, started):
    stack_env = {"KEPU_STACK_ID": "stack-under-test", "KEPU_VAR_DIR": str(tmp_path)}
    supervisor, children = start_supervisor(tmp_path, started, f"svc={SLEEPER}",
                                            env=stack_env)
    # The user's shell after `set -a; . var/stack.env`: the same variables, not the stack's.
    shell = subprocess.Popen(["sleep", "600"], env={**os.environ, **stack_env})
    started.append(shell)
    (child_pid, _), = children.values()

    assert stack.down(var=tmp_path) == 0

    wait_for(lambda: supervisor.poll() is not None, what="the supervisor to end")
    assert not alive(child_pid)
    assert shell.poll() is None, "down killed a process that only carried the stack's env"
    assert not (tmp_path / stack.PID_FILE).exists()


def test_down_never_signals_a_reused_pid(tmp_path, started):
    bystander = subprocess.Popen(["sleep", "600"], start_new_session=True)
    started.append(bystander)
    wait_for(lambda: start_time(bystander.pid) is not None)
    # A pid file of a stack that died long ago whose pids the kernel has since handed out.
    stale = {"supervisor": [bystander.pid, start_time(bystander.pid) - 1],
             "pgid": bystander.pid,
             "children": {"svc": [bystander.pid, start_time(bystander.pid) - 1]}}
    (tmp_path / stack.PID_FILE).write_text(json.dumps(stale))

    assert stack.down(var=tmp_path, timeout=1) == 0

    assert bystander.poll() is None
    assert Tracked.of("x", bystander.pid).alive()


def test_logs_and_pid_file_are_private(tmp_path, started):
    supervisor, _ = start_supervisor(
        tmp_path, started, f"svc={sys.executable} -c 'print(\"hello\", flush=True); "
        "import time; time.sleep(600)'")
    log = tmp_path / "log" / "svc.log"
    wait_for(lambda: log.exists() and b"hello" in log.read_bytes(), what="the log line")
    for path, mode in ((log, 0o600), (tmp_path / stack.PID_FILE, 0o600),
                       (tmp_path / "log", 0o700)):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    supervisor.send_signal(signal.SIGTERM)
    supervisor.wait(timeout=30)


def test_private_files_are_narrowed_and_written_0600(tmp_path):
    from deploy.private import open_private, write_private

    loose = tmp_path / "var" / "log" / "stack.log"
    loose.parent.mkdir(parents=True)
    loose.write_text("old")
    loose.chmod(0o644)
    with open_private(loose) as out:
        out.write(b"new")
    write_private(tmp_path / "var" / "stack.env", "KEPU_URL=http://127.0.0.1:8080\n")
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "var" / "stack.env").stat().st_mode) == 0o600
    assert stat.S_IMODE(loose.parent.stat().st_mode) == 0o700
