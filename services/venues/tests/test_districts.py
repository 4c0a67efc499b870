"""Districts are organisations (#12.1): venues by `district_id`, and venues' half of
`kepu migrate districts` (idempotent, announced, sessions follow)."""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory

from services.contracts.venues import VenueRegistration
from services.kit.actor import Actor, actor_key, sign, verify
from services.kit.boundary import load
from services.kit.errors import Forbidden, ValidationFailed
from services.kit.outbox import pending
from services.venues.service import VenuesService
from services.venues.tests.conftest import ADMIN
from services.venues.tests.helpers import publish

KEY = actor_key("unit-test-secret")
BODY = {"name": "上海天文馆", "kind": "planetarium", "location": {"lat": 30.9, "lon": 121.9},
        "address": "临港大道380号"}


def register(repo, **district):
    return repo.register_venue(load(VenueRegistration, {**BODY, **district}), ADMIN)


def events(repo, venue_id, kind):
    return [env["data"] for _, env in pending(repo.db.venues.find_one({"_id": venue_id}))
            if env["type"] == kind]


def test_a_venue_registers_by_district_id_and_announces_it(repo):
    repo.districts.learn({"district_id": "dis_pudong", "name": "浦东新区"})
    venue = register(repo, district_id="dis_pudong")
    assert (venue["district_id"], venue["district"]) == ("dis_pudong", "浦东新区")
    assert events(repo, venue["_id"], "venues.venue_registered")[0]["district_id"] == (
        "dis_pudong")
    session = publish(repo, venue)
    assert repo.db.sessions.find_one({"_id": session["session_id"]})["district_id"] == (
        "dis_pudong")


def test_an_unknown_district_id_is_422_naming_it(repo):
    with pytest.raises(ValidationFailed) as refused:
        register(repo, district_id="dis_nowhere")
    assert "district_id" in refused.value.errors
    assert repo.db.venues.count_documents({}) == 0
    with pytest.raises(ValidationFailed) as missing:
        load(VenueRegistration, BODY)
    assert "district_id" in missing.value.errors


def test_the_catalogue_filters_by_district_id(repo):
    repo.districts.learn({"district_id": "dis_pudong", "name": "浦东新区"})
    publish(repo, register(repo, district_id="dis_pudong"))
    publish(repo, register(repo, district="静安区"))
    found = repo.catalogue.search({"district_id": "dis_pudong"})["items"]
    assert [s["venue"]["district_id"] for s in found] == ["dis_pudong"]


def test_adopting_ids_links_venues_and_sessions_once_and_announces_the_link(repo):
    venue = register(repo, district="静安区")
    session = publish(repo, venue)
    assert repo.district_names() == {"静安区"}
    assert repo.adopt_district_ids({"静安区": "dis_jingan"}) == {"venues": 1, "sessions": 1}
    assert repo.adopt_district_ids({"静安区": "dis_jingan"}) == {"venues": 0, "sessions": 0}
    assert repo.district_names() == set()
    updated = events(repo, venue["_id"], "venues.venue_updated")
    assert [e["district_id"] for e in updated] == ["dis_jingan"]  # once, not per run
    assert updated[0]["version"] == 1
    stored = repo.db.sessions.find_one({"_id": session["session_id"]})
    assert stored["district_id"] == stored["venue"]["district_id"] == "dis_jingan"
    assert register(repo, district_id="dis_jingan")["district"] == "静安区"


def test_the_migration_rpcs_are_for_admins_and_identity_events_are_heard(repo):
    service = worker_factory(VenuesService, store=repo, actors=lambda d: verify(d, KEY))
    register(repo, district="静安区")
    admin = sign(Actor.system("migrate"), KEY)
    assert service.district_names(admin) == ["静安区"]
    with pytest.raises(Forbidden):
        service.adopt_district_ids({"静安区": "dis_j"}, sign(
            Actor(sub="d", role="district", org="dis_j"), KEY))
    event = {"data": {"district_id": "dis_minhang", "name": "闵行区", "code": "310112",
                      "timezone": "Asia/Shanghai"}}
    service.on_district_registered.__wrapped__(service, event)
    service.on_district_registered.__wrapped__(service, event)
    assert register(repo, district_id="dis_minhang")["district"] == "闵行区"
