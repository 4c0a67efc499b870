"""Which processes are the stack's: a pid plus its start time, never an environment variable.

A pid alone is not an identity — after a process ends, the kernel hands its pid to the next
one — so the stack records each child's pid with its start time (field 22 of
/proc/<pid>/stat, clock ticks since boot) and signals a pid only while both still match.
Anyone can copy the stack's environment (`set -a; . var/stack.env` does), so it is never
used to find processes.
"""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass
from pathlib import Path

PR_SET_PDEATHSIG = 1


def start_time(pid: int) -> int | None:
    """The start time of process `pid`, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])  # field 22 overall; fields[0] is field 3 (state)


def process_group(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[2])  # field 5


@dataclass(frozen=True)
class Tracked:
    """One process of the stack, as it was when it was started."""

    name: str
    pid: int
    started: int

    @classmethod
    def of(cls, name: str, pid: int) -> Tracked | None:
        started = start_time(pid)
        return None if started is None else cls(name, pid, started)

    def alive(self) -> bool:
        """Still this very process (not a later one that reuses the pid), and not a zombie."""
        if start_time(self.pid) != self.started:
            return False
        try:
            state = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z"

    def signal(self, sig: int) -> bool:
        """Send `sig` if this is still the same process; whether it was sent."""
        if not self.alive():
            return False
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def as_json(self) -> list:
        return [self.pid, self.started]


def group_members(pgid: int, not_before: int) -> list[Tracked]:
    """Processes in process group `pgid` started no earlier than `not_before`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid != os.getpid() and process_group(pid) == pgid:
            tracked = Tracked.of(f"pgid-{pgid}", pid)
            if tracked is not None and tracked.started >= not_before:
                found.append(tracked)
    return found


try:  # resolved now: after fork, the child should call as little as possible
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def die_with_parent(parent: int) -> None:
    """preexec_fn of every child (`partial(die_with_parent, os.getpid())`): the kernel sends
    it SIGTERM when the supervisor dies, by whatever means (SIGKILL, a crash, a closed
    terminal). Linux only; a no-op elsewhere."""
    if _prctl is None:
        return
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl: nobody would signal us
        os._exit(1)
