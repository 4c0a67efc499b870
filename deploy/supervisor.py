"""Runs the development stack's processes and makes sure none outlives it.

Three guarantees, each against a way the stack used to leak processes:
- every child asks the kernel for SIGTERM when the supervisor dies (PR_SET_PDEATHSIG), so
  even a SIGKILL-ed supervisor leaves nothing behind;
- the supervisor never dies of its own output: when stdout goes away (`make run | tee`,
  then Ctrl-C) writes are dropped, not fatal, and the children are stopped in a `finally`;
- it records each child's pid *and start time* in a 0600 pid file, which is how
  `deploy.stack down` finds the stack's processes (and only those).

Children's output goes to their own 0600 log file and, prefixed, to the supervisor's
stdout; a process started with `log=False` (the welcome line with tokens) reaches the
terminal only, never a file.

    python -m deploy.supervisor --pid-file P --log-dir D NAME=COMMAND...   # what tests use
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO

from deploy.private import open_private, private_dir, write_private
from deploy.procs import Tracked, die_with_parent, start_time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Child:
    """One supervised process: its Popen, log file and partial output line."""

    def __init__(self, name: str, proc: subprocess.Popen, log: IO | None,
                 oneshot: bool) -> None:
        self.name, self.proc, self.log, self.oneshot = name, proc, log, oneshot
        self.tracked = Tracked.of(name, proc.pid)
        self.buffer = b""
        self.reported = False


class Supervisor:
    def __init__(self, env: dict[str, str], cwd: Path, log_dir: Path,
                 pid_file: Path | None = None, out: IO | None = None) -> None:
        self.env, self.cwd, self.log_dir, self.pid_file = env, cwd, log_dir, pid_file
        self.out = out if out is not None else sys.stdout
        self.children: dict[str, Child] = {}
        self.selector = selectors.DefaultSelector()
        self.stopping: str | None = None
        self.width = 12
        private_dir(log_dir)

    # -- output -------------------------------------------------------------------------
    def say(self, name: str, text: str) -> None:
        """One line to the terminal; a closed or broken stdout is ignored, never fatal."""
        if self.out is None:
            return
        try:
            self.out.write(f"{name:>{self.width}} | {text}\n")
            self.out.flush()
        except (BrokenPipeError, OSError, ValueError):
            self._drop_stdout()

    def _drop_stdout(self) -> None:
        self.out = None
        try:  # the interpreter flushes sys.stdout at exit: give it somewhere harmless
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def _pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            child: Child = key.data
            try:
                data = os.read(key.fd, 65536)
            except OSError:
                data = b""
            if not data:
                self.selector.unregister(key.fd)
                data, child.buffer = child.buffer + b"\n", b""
                if data == b"\n":
                    continue
            lines = (child.buffer + data).split(b"\n")
            child.buffer = lines.pop()
            for line in lines:
                if child.log is not None:
                    child.log.write(line + b"\n")
                    child.log.flush()
                self.say(child.name, line.decode(errors="replace"))

    # -- processes ----------------------------------------------------------------------
    def start(self, name: str, argv: list[str], *, log: bool = True, oneshot: bool = False,
              ready: Callable[[], bool] | None = None, ready_timeout: float = 30.0) -> None:
        """Start `argv` as `name`; with `ready`, keep pumping output until it returns true."""
        log_file = open_private(self.log_dir / f"{name}.log") if log else None
        proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                preexec_fn=partial(die_with_parent, os.getpid()))
        child = Child(name, proc, log_file, oneshot)
        self.children[name] = child
        os.set_blocking(proc.stdout.fileno(), False)
        self.selector.register(proc.stdout.fileno(), selectors.EVENT_READ, child)
        self.width = max(self.width, len(name))
        self._record()
        deadline = time.monotonic() + ready_timeout
        while ready is not None and not ready() and not self.stopping:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become ready")
            self._pump(0.1)

    def _record(self) -> None:
        if self.pid_file is None:
            return
        me = os.getpid()
        write_private(self.pid_file, json.dumps({
            "supervisor": [me, start_time(me)], "pgid": os.getpgid(0),
            "children": {c.name: c.tracked.as_json() for c in self.children.values()
                         if c.tracked is not None}}))

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = self.stopping or signal.Signals(signum).name

    def loop(self) -> str:
        """Until a stop signal, or a long-running child exits; the reason. A one-shot child
        (the demo loader) may end, and its failure is reported, not fatal."""
        while not self.stopping:
            self._pump(0.5)
            for child in self.children.values():
                code = child.proc.poll()
                if code is None:
                    continue
                if not child.oneshot:
                    self.stopping = f"{child.name} exited with {code}"
                    break
                if code != 0 and not child.reported:
                    self.say(child.name, f"exited with {code}; the stack keeps running")
                child.reported = True
        return self.stopping

    def stop_all(self, timeout: float = 25.0) -> None:
        """SIGTERM every child (last started first), wait, then SIGKILL what remains."""
        running = [c for c in reversed(self.children.values()) if c.proc.poll() is None]
        for child in running:
            try:
                child.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while any(c.proc.poll() is None for c in running) and time.monotonic() < deadline:
            self._pump(0.1)
        for child in running:
            if child.proc.poll() is None:
                child.proc.kill()
                child.proc.wait()
        self._pump(0)
        for child in self.children.values():
            if child.log is not None:
                child.log.close()

    def install_signals(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def close(self) -> None:
        """Stop every child (always: this runs in a `finally`) and forget the pid file."""
        try:
            self.stop_all()
        finally:
            if self.pid_file is not None:
                self.pid_file.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--log-dir", type=Path, required=True)
    parser.add_argument("process", nargs="+", help="NAME=COMMAND")
    args = parser.parse_args(argv)
    supervisor = Supervisor(dict(os.environ), Path.cwd(), args.log_dir, args.pid_file)
    supervisor.install_signals()
    try:
        for spec in args.process:
            name, _, command = spec.partition("=")
            supervisor.start(name, shlex.split(command))
        reason = supervisor.loop()
        supervisor.say("supervisor", f"stopping: {reason}")
    finally:
        supervisor.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
