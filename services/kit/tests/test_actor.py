from __future__ import annotations

import time

import pytest

from services.kit.actor import Actor, actor_key, sign, verify
from services.kit.errors import Forbidden

KEY = actor_key("unit-secret")
SCHOOL = Actor(sub="u1", role="school", org="sch_1")


def code(data, key=KEY):
    with pytest.raises(Forbidden) as refused:
        verify(data, key)
    return refused.value.code


def test_a_signed_actor_verifies_as_itself():
    assert verify(sign(SCHOOL, KEY), KEY) == SCHOOL
    admin = Actor(sub="root", role="admin")
    assert verify(sign(admin, KEY), KEY) == admin


def test_the_actor_key_is_not_the_jwt_secret_and_depends_on_it():
    assert KEY != b"unit-secret" and KEY != actor_key("another-secret")


def test_a_forged_actor_is_refused():
    signed = sign(SCHOOL, KEY)
    assert code({**signed, "role": "admin"}) == "actor-unverified"
    assert code({**signed, "org": "sch_2"}) == "actor-unverified"
    assert code({**signed, "exp": signed["exp"] + 3600}) == "actor-unverified"
    assert code(signed, key=actor_key("another-secret")) == "actor-unverified"
    assert code(sign(Actor("u1", "emperor", "x"), KEY)) == "actor-unverified"


def test_an_expired_actor_is_refused():
    assert code(sign(SCHOOL, KEY, ttl_s=-1)) == "actor-expired"
    assert sign(SCHOOL, KEY)["exp"] <= int(time.time()) + 300


@pytest.mark.parametrize("data", [None, "admin", {}, {"sub": "u1", "role": "admin"},
                                  SCHOOL.as_dict(), {**SCHOOL.as_dict(), "sig": 5}])
def test_an_unsigned_actor_is_refused(data):
    assert code(data) == "actor-unverified"


@pytest.mark.parametrize("role", ["school", "venue", "finance", "district"])
def test_an_organisation_role_without_an_organisation_is_refused(role):
    assert code(sign(Actor("u1", role, None), KEY)) == "actor-no-org"
    assert code(sign(Actor("u1", role, ""), KEY)) == "actor-no-org"


def test_roles_and_ownership():
    assert SCHOOL.owns("sch_1") and not SCHOOL.owns("sch_2") and not SCHOOL.owns(None)
    assert Actor.system().owns("anything") and Actor.system().is_admin
    assert SCHOOL.require("school", "venue") is SCHOOL
    assert SCHOOL.org_as("school") == "sch_1"
    with pytest.raises(Forbidden):
        SCHOOL.require("venue")
    with pytest.raises(Forbidden):
        SCHOOL.org_as("venue")
    assert SCHOOL.name == "school:u1"


def test_a_signature_that_is_not_ascii_is_refused_not_a_crash():
    signed = {**sign(SCHOOL, KEY), "sig": "签名"}
    with pytest.raises(Forbidden):
        verify(signed, KEY)
