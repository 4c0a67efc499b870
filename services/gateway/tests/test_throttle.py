from __future__ import annotations

import pytest

from services.gateway.problems import Problem
from services.gateway.throttle import (
    DEFAULT_RATES,
    Rate,
    Throttle,
    group_of,
    parse_rates,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    clock = Clock()
    throttle = Throttle({"default": Rate(2, 3)}, now=clock)
    assert [throttle.wait_s("default", "a") for _ in range(3)] == [0, 0, 0]
    assert throttle.wait_s("default", "a") == pytest.approx(0.5)
    clock.t += 0.5
    assert throttle.wait_s("default", "a") == 0
    clock.t += 100  # never more than the burst
    assert [throttle.wait_s("default", "a") for _ in range(4)][-1] > 0


def test_the_refusal_is_a_429_with_whole_seconds_to_wait():
    throttle = Throttle({"default": Rate(0.1, 1)}, now=Clock())
    throttle.take("default", "a")
    with pytest.raises(Problem) as refused:
        throttle.take("default", "a")
    assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "10"


def test_clients_and_groups_have_their_own_buckets_and_old_ones_are_dropped():
    throttle = Throttle({"default": Rate(1, 1), "consent": Rate(1, 1)}, now=Clock(),
                        max_clients=2)
    assert throttle.wait_s("default", "a") == 0
    assert throttle.wait_s("consent", "a") == 0
    assert throttle.wait_s("default", "b") == 0  # evicts ("default", "a"), the oldest
    assert len(throttle._buckets) == 2
    assert throttle.wait_s("unknown-group", "c") == 0  # counts as default


def test_limits_from_the_environment():
    assert parse_rates("") == DEFAULT_RATES
    assert parse_rates("off") is None
    rates = parse_rates("default=1000:2000, consent=1")
    assert rates["default"] == Rate(1000, 2000) and rates["consent"] == Rate(1, 1)
    assert rates["health"] == DEFAULT_RATES["health"]
    with pytest.raises(ValueError):
        parse_rates("default=lots")
    assert Throttle(None).wait_s("default", "a") == 0


def test_route_groups():
    assert group_of("/v1/consents/abc.def") == "consent"
    assert group_of("/readyz") == group_of("/healthz") == "health"
    assert group_of("/v1/claims") == "default"
