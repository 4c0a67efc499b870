"""Passwords: argon2id, the rules for new ones, the dummy path, rehashing."""

from __future__ import annotations

import pytest

from services.identity.passwords import (
    COMMON,
    MEMORY_KIB,
    PARALLELISM,
    TIME_COST,
    Passwords,
    check_new,
)
from services.identity.tests.helpers import SpyHasher, login, member
from services.kit.errors import ValidationFailed

CHEAP = Passwords(time_cost=1, memory_kib=8 * 1024, parallelism=1)


@pytest.mark.parametrize("password", ["123456", "password", "qwerty", "woaini1314",
                                      "5201314", "a123456", "iloveyou", "1234567890",
                                      "QWERTYUIOP", "woaini1314520", "Password123!",
                                      "aaaaaaaaaaaa", "abababababab"])
def test_common_passwords_are_refused_naming_the_field(password):
    with pytest.raises(ValidationFailed) as refused:
        check_new(password)
    assert list(refused.value.errors) == ["password"]


def test_short_and_overlong_passwords_are_refused():
    for bad in ("", "Ab3$xyz", "x" * 9 + "", "Long-enough" * 12):
        with pytest.raises(ValidationFailed):
            check_new(bad)
    check_new("river-of-stars-9")


def test_a_password_containing_the_persons_own_identifier_is_refused():
    with pytest.raises(ValidationFailed):
        check_new("zhangwei2026!", ("zhangwei@example.cn",))
    with pytest.raises(ValidationFailed):
        check_new("me13812345678", ("+8613812345678",))
    check_new("zhangwei2026!", ("li@example.cn",))


def test_the_shipped_list_is_real_and_big_enough():
    assert {"123456", "password", "qwerty", "woaini1314", "5201314", "111111"} <= COMMON
    assert len(COMMON) >= 200


def test_hashes_are_argon2id_with_the_documented_parameters():
    stored = Passwords().hash("river-of-stars-9")
    assert stored.startswith(f"$argon2id$v=19$m={MEMORY_KIB},t={TIME_COST},p={PARALLELISM}$")
    assert Passwords().verify(stored, "river-of-stars-9")
    assert not Passwords().verify(stored, "river-of-stars-8")
    assert not Passwords().verify("not a hash", "river-of-stars-9")


def test_with_no_stored_hash_verify_does_the_work_and_says_no():
    hasher = Passwords()
    hasher.hasher = spy = SpyHasher(hasher.hasher)
    assert hasher.verify(None, "anything-at-all") is False
    assert spy.calls == [hasher.dummy] and hasher.dummy.startswith("$argon2id$")


def test_a_hash_made_with_old_parameters_is_replaced_at_sign_in(repo):
    joined = member(repo, "teacher@example.cn")
    old = CHEAP.hash("Kepu-planetarium-7")
    repo.db.users.update_one({"_id": joined["user_id"]}, {"$set": {"password_hash": old}})
    assert repo.hasher.needs_rehash(old)
    login(repo, "teacher@example.cn")
    stored = repo.db.users.find_one({"_id": joined["user_id"]})["password_hash"]
    assert stored != old and not repo.hasher.needs_rehash(stored)
    login(repo, "teacher@example.cn")


def test_hashing_runs_where_the_service_offloads_it():
    from services.identity.passwords import Passwords

    ran = []

    def offload(work, *args):
        ran.append(work.__name__)
        return work(*args)

    hasher = Passwords(time_cost=1, memory_kib=8, offload=offload)
    stored = hasher.hash("a-long-pass-phrase")
    assert hasher.verify(stored, "a-long-pass-phrase") and not hasher.verify(None, "x")
    assert ran == ["hash", "verify", "verify"]
