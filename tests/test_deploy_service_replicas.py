"""A second replica of a service joins its RPC queue as a competing consumer (scale-out)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from deploy.stack import ROOT
from tests.support import wait_for

pytestmark = pytest.mark.stack


def test_a_second_booking_replica_answers_from_the_same_queue(stack, rpc):
    stack.start("booking", instance="booking-2")
    try:
        seen: set[str] = set()

        def both_answer() -> bool:
            for _ in range(10):
                seen.add(rpc.booking.ping()["instance"])
            return len(seen) >= 2

        wait_for(both_answer, timeout=60, interval=0.2, message="two booking replicas answer")
        assert len(seen) == 2
    finally:
        stack.stop("booking-2")


def test_kepu_ping_is_a_container_health_check(stack, settings_env):
    def ping(service: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.kit.cli", "ping", service,
                               "--timeout", "10"], cwd=ROOT, env=settings_env,
                              capture_output=True, text=True, timeout=60)

    answered = ping("venues")
    assert answered.returncode == 0, answered.stderr
    assert json.loads(answered.stdout)["service"] == "venues"
    missing = ping("nosuch")
    assert missing.returncode == 1
    assert "not running" in missing.stderr
