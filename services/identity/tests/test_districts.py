"""Districts: registered by admins, unique codes, and the schools and venues they hold."""

from __future__ import annotations

import pytest

from services.identity.tests.conftest import ADMIN
from services.identity.tests.helpers import outbox_events
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, NotFound

PUDONG = {"name": "浦东新区教育局", "code": "310115", "timezone": "Asia/Shanghai"}


def test_an_admin_registers_a_district_and_it_is_announced(repo):
    district = repo.districts.register(PUDONG, ADMIN)
    assert repo.districts.get(district["district_id"]) == district
    sent = outbox_events(repo.db.organisations, district["district_id"],
                         "identity.district_registered")
    assert sent[0]["data"]["code"] == "310115"
    assert repo.districts.list(10, None)["items"] == [district]


def test_only_admins_register_districts(repo):
    with pytest.raises(Forbidden):
        repo.districts.register(PUDONG, Actor(sub="u", role="district", org="dis_x"))


def test_a_code_belongs_to_one_district(repo):
    repo.districts.register(PUDONG, ADMIN)
    with pytest.raises(Conflict):
        repo.districts.register({**PUDONG, "name": "另一个"}, ADMIN)


def test_a_retried_registration_is_one_district(repo):
    first = repo.districts.register(PUDONG, ADMIN, "key-1")
    assert repo.districts.register(PUDONG, ADMIN, "key-1") == first
    assert repo.db.organisations.count_documents({"kind": "district"}) == 1


def test_schools_learned_before_their_district_are_adopted_when_it_arrives(repo):
    repo.organisations.learn("school", "sch_a", "实验小学", "浦东新区教育局")
    assert repo.organisations.district_of("sch_a") is None
    district = repo.districts.register(PUDONG, ADMIN)
    assert repo.organisations.district_of("sch_a") == district["district_id"]
    assert repo.organisations.district_of(district["district_id"]) == district["district_id"]


def test_an_unknown_district_is_not_found(repo):
    with pytest.raises(NotFound):
        repo.districts.get("dis_nowhere")
