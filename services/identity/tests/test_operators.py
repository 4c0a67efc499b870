"""The operator's path: the first admin without an invitation, and audited minted tokens."""

from __future__ import annotations

import pytest

from services.identity.tests.conftest import ADMIN
from services.kit.actor import Actor
from services.kit.errors import Forbidden, ValidationFailed


def body(**extra):
    return {"identifier": "Ops@Example.cn", "password": "a-long-pass-phrase",
            "display_name": "运维", "language": "zh-CN", "role": "admin", "org_id": None,
            "manager": True, **extra}


def test_provision_makes_the_person_once_and_keeps_their_password(repo):
    first = repo.operators.provision(body(), Actor.system("kepu-cli"))
    again = repo.operators.provision(body(password="another-long-phrase"),
                                     Actor.system("kepu-cli"))
    assert first["created"] and not again["created"]
    assert first["user"]["user_id"] == again["user"]["user_id"]
    pair = repo.sessions.login("ops@example.cn", "a-long-pass-phrase", {"address": None})
    assert pair["role"] == "admin" and pair["org_id"] is None
    added = list(repo.db.audit.find({"action": "member_added"}))
    assert len(added) == 1  # the second call changed nothing


def test_provision_is_for_operators_and_checks_the_password(repo, district):
    with pytest.raises(Forbidden):
        repo.operators.provision(body(), Actor(sub="u", role="district",
                                               org=district["district_id"]))
    with pytest.raises(ValidationFailed) as weak:
        repo.operators.provision(body(password="1234567890"), ADMIN)
    assert "password" in weak.value.errors


def test_a_minted_token_is_audited_with_its_jti(repo):
    repo.operators.record_token({"jti": "j" * 32, "sub": "ops", "role": "school",
                                 "org_id": "sch_1", "ttl_s": 3600}, Actor.system("kepu-cli"))
    row = repo.db.audit.find_one({"action": "token_minted"})
    assert row["resource_id"] == "j" * 32 and row["org_id"] == "sch_1"


def test_an_operator_may_set_an_existing_persons_password_and_their_tokens_end(repo):
    first = repo.operators.provision(body(), ADMIN)
    again = repo.operators.provision(body(password="another-long-phrase", set_password=True),
                                     ADMIN)
    assert not again["created"]
    pair = repo.sessions.login("ops@example.cn", "another-long-phrase", {"address": None})
    assert pair["user_id"] == first["user"]["user_id"]
    assert repo.users.get(pair["user_id"])["not_before"] > 0  # older tokens cut off
