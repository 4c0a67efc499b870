"""`make up` / `make down` for real, in a var/ of the test's own: nothing the stack writes is
readable by others or holds a token, and `down` leaves none of its processes running."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from deploy import broker as broker_admin
from deploy import stack
from deploy.procs import Tracked
from deploy.stack import ROOT, free_port

pytestmark = pytest.mark.stack


@pytest.fixture
def vhost_url():
    """A vhost of its own: this stack must not consume the session stack's queues."""
    base = os.environ.get("AMQP_URL", broker_admin.DEFAULT)
    vhost = f"kepu-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    broker_admin.create_vhost(vhost)
    yield broker_admin.vhost_url(base, vhost)
    broker_admin.delete_vhost(vhost)


def stack_cli(action: str, var: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deploy.stack", action], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


def test_up_writes_nothing_readable_or_secret_and_down_stops_every_process(tmp_path,
                                                                           vhost_url):
    var = tmp_path / "var"
    env = {**os.environ, "KEPU_VAR_DIR": str(var), "AMQP_URL": vhost_url,
           "KEPU_SERVICES": "venues", "KEPU_PORT": str(free_port()),
           "KEPU_MONGO_PORT": str(free_port()), "KEPU_JWT_SECRET": "up-test-" + uuid.uuid4().hex}
    env.pop("MONGO_URL", None)
    members: list[Tracked] = []
    try:
        started = stack_cli("up", var, env)
        assert started.returncode == 0, started.stdout + started.stderr
        assert "eyJ" not in started.stdout  # no token printed into a possibly logged place
        members = stack.stack_members(var)
        names = {m.name for m in members}
        assert {"supervisor", "mongo", "venues", "relay", "gateway"} <= names, names

        for path in [var, *var.rglob("*")]:
            if path.is_symlink() or "mongo" in path.relative_to(var).parts:
                continue  # the database's own files are the database's business
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path} is mode {oct(mode)}"
        env_file = (var / "stack.env").read_text()
        assert "KEPU_URL=" in env_file and "eyJ" not in env_file
        assert "eyJ" not in (var / "log" / "stack.log").read_text()
        assert json.loads((var / "stack.pids").read_text())["children"]
    finally:
        stopped = stack_cli("down", var, env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert members and not [m.name for m in members if m.alive()]
    assert not (var / "stack.pids").exists() and not (var / "stack.env").exists()
