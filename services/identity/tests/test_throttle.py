"""Brute force: growing waits per identifier and per address, shared through MongoDB."""

from __future__ import annotations

import pytest
from nameko.exceptions import deserialize, serialize

from services.identity.errors import TooManyRequests, Unauthenticated
from services.identity.tests.helpers import SpyHasher, login, member
from services.identity.throttle import PER_IDENTIFIER, Limit, Throttle, lock_seconds

WRONG = "not-the-password-1"


def wrong(repo, identifier="teacher@example.cn", address="203.0.113.7"):
    return login(repo, identifier, WRONG, {"address": address, "user_agent": None})


def refused_wait(repo, **kwargs) -> int:
    with pytest.raises(TooManyRequests) as refused:
        wrong(repo, **kwargs)
    return refused.value.retry_after


def test_wrong_passwords_meet_a_growing_wait(repo, now):
    member(repo, "teacher@example.cn")
    for _ in range(PER_IDENTIFIER.free + 1):
        with pytest.raises(Unauthenticated):
            wrong(repo)
    waits = [refused_wait(repo)]
    for _ in range(4):
        now.move(waits[-1])
        with pytest.raises(Unauthenticated):
            wrong(repo)
        waits.append(refused_wait(repo))
    assert waits == sorted(waits) and waits[-1] > waits[0]
    assert waits == [1, 2, 4, 8, 16]


def test_a_locked_identifier_refuses_even_the_right_password_without_hashing(repo, now,
                                                                            monkeypatch):
    member(repo, "teacher@example.cn")
    for _ in range(PER_IDENTIFIER.free + 1):
        with pytest.raises(Unauthenticated):
            wrong(repo)
    spy = SpyHasher(repo.hasher.hasher)
    monkeypatch.setattr(repo.hasher, "hasher", spy)
    with pytest.raises(TooManyRequests):
        login(repo, "teacher@example.cn")
    assert spy.calls == []
    now.move(1)
    login(repo, "teacher@example.cn")  # the wait is over: the right password works


def test_success_clears_the_identifier_count(repo):
    member(repo, "teacher@example.cn")
    for _ in range(PER_IDENTIFIER.free):
        with pytest.raises(Unauthenticated):
            wrong(repo)
    login(repo, "teacher@example.cn")
    for _ in range(PER_IDENTIFIER.free):
        with pytest.raises(Unauthenticated):
            wrong(repo)  # a fresh allowance, no lock yet


def test_unknown_identifiers_take_the_dummy_hash_path_and_are_counted(repo, monkeypatch):
    dummy = repo.hasher.dummy
    spy = SpyHasher(repo.hasher.hasher)
    monkeypatch.setattr(repo.hasher, "hasher", spy)
    with pytest.raises(Unauthenticated) as refused:
        wrong(repo, identifier="nobody@example.cn")
    assert spy.calls == [dummy]
    assert refused.value.detail == "wrong identifier or password"
    for _ in range(PER_IDENTIFIER.free):
        with pytest.raises(Unauthenticated):
            wrong(repo, identifier="nobody@example.cn")
    assert refused_wait(repo, identifier="nobody@example.cn") >= 1


def test_one_address_spraying_many_identifiers_is_locked(repo):
    throttle = Throttle(repo.db.throttle)
    limit = Limit(free=2, cap_s=60)
    assert [throttle.fail("ip:198.51.100.1", limit) for _ in range(4)] == [0, 0, 1, 2]
    with pytest.raises(TooManyRequests):
        throttle.check("id:email:someone@example.cn", "ip:198.51.100.1")
    throttle.check("id:email:someone@example.cn", "ip:198.51.100.2")


def test_another_replica_sees_the_same_counts(repo):
    """Two Throttle objects over the same collection stand for two replicas."""
    one, two = Throttle(repo.db.throttle), Throttle(repo.db.throttle)
    limit = Limit(free=1, cap_s=60)
    one.fail("id:email:a@example.cn", limit)
    assert two.fail("id:email:a@example.cn", limit) == 1
    with pytest.raises(TooManyRequests):
        one.check("id:email:a@example.cn")


def test_a_count_starts_afresh_after_its_window(repo, now):
    throttle = Throttle(repo.db.throttle)
    limit = Limit(free=1, cap_s=60)
    throttle.fail("id:email:a@example.cn", limit)
    now.move(24 * 3600 + 1)
    assert throttle.fail("id:email:a@example.cn", limit) == 0


def test_waits_grow_to_a_cap():
    assert [lock_seconds(Limit(free=2, cap_s=10), n) for n in range(1, 9)] == \
        [0, 0, 1, 2, 4, 8, 10, 10]


def test_too_many_requests_crosses_rpc_with_its_retry_after():
    again = deserialize(serialize(TooManyRequests("wait", code="too-many-attempts",
                                                  retry_after=17)))
    assert isinstance(again, TooManyRequests) and again.retry_after == 17
    assert again.status == 429 and again.problem()["retry_after"] == 17
    assert again.code == "too-many-attempts"
