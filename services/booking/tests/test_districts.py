"""Districts are organisations (#12.1): schools by `district_id`, district-scoped reads,
and booking's half of `kepu migrate districts`."""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory

from services.booking.schools import list_schools, readable_school, register_school
from services.booking.service import BookingService
from services.booking.tests.conftest import ADMIN, known_district, make_school, school_actor
from services.booking.tests.test_idempotency import add_tutor, visit_body
from services.kit.actor import Actor, actor_key, sign, verify
from services.kit.errors import Forbidden, NotFound, ValidationFailed
from services.kit.outbox import pending

KEY = actor_key("unit-test-secret")
PLACE = {"location": {"lat": 31.1, "lon": 121.5}, "students": 600}


def body(**district):
    return {"name": "三林小学", **district, **PLACE}


def finance(district_id):
    return Actor(sub=f"fin-{district_id}", role="finance", org=district_id)


def supervisor(district_id):
    return Actor(sub=f"sup-{district_id}", role="district", org=district_id)


def test_a_school_registers_by_district_id_and_shows_the_name(repo):
    pudong = known_district(repo, "浦东新区")
    school = register_school(repo, ADMIN, body(district_id=pudong))
    assert (school["district_id"], school["district"]) == (pudong, "浦东新区")
    staged = [env for _, env in pending(repo.db.schools.find_one({"_id": school["_id"]}))][0]
    assert staged["type"] == "booking.school_registered"
    assert staged["data"]["district_id"] == pudong


def test_an_unknown_district_id_is_422_naming_it(repo):
    with pytest.raises(ValidationFailed) as refused:
        register_school(repo, ADMIN, body(district_id="dis_nowhere"))
    assert "district_id" in refused.value.errors
    assert repo.db.schools.count_documents({}) == 0


def test_no_district_at_all_is_422_naming_district_id(repo):
    with pytest.raises(ValidationFailed) as refused:
        register_school(repo, ADMIN, body())
    assert "district_id" in refused.value.errors


def test_a_name_disagreeing_with_the_id_is_422(repo):
    pudong = known_district(repo, "浦东新区")
    with pytest.raises(ValidationFailed) as refused:
        register_school(repo, ADMIN, body(district_id=pudong, district="徐汇区"))
    assert "district" in refused.value.errors


def test_the_old_name_is_linked_when_known_and_kept_unlinked_otherwise(repo):
    pudong = known_district(repo, "浦东新区")
    assert register_school(repo, ADMIN, body(district="浦东新区"))["district_id"] == pudong
    legacy = register_school(repo, ADMIN, body(district="静安区"))
    assert (legacy["district_id"], legacy["district"]) == (None, "静安区")


def test_the_directory_learns_from_identitys_event_once(repo):
    service = worker_factory(BookingService, store=repo, actors=lambda d: verify(d, KEY))
    event = {"data": {"district_id": "dis_minhang", "name": "闵行区", "code": "310112",
                      "timezone": "Asia/Shanghai"}}
    service.on_district_registered.__wrapped__(service, event)
    service.on_district_registered.__wrapped__(service, event)  # a repeat changes nothing
    assert repo.db.district_directory.count_documents({}) == 1
    school = register_school(repo, ADMIN, body(district_id="dis_minhang"))
    assert school["district"] == "闵行区"


def test_finance_and_district_staff_read_only_their_districts_schools(repo):
    pudong, xuhui = known_district(repo, "浦东新区"), known_district(repo, "徐汇区")
    a = make_school(repo, "浦东一小", district="浦东新区")
    b = make_school(repo, "徐汇一小", district="徐汇区")
    for actor in (finance(pudong), supervisor(pudong)):
        assert readable_school(actor, a) is a
        with pytest.raises(NotFound):
            readable_school(actor, b)
        listed, _ = list_schools(repo, actor, {"limit": 50})
        assert [s["_id"] for s in listed] == [a["_id"]]
    listed, _ = list_schools(repo, supervisor(xuhui), {"limit": 50, "district_id": pudong})
    assert [s["_id"] for s in listed] == [b["_id"]]  # not an admin: its own, whatever asked
    assert len(list_schools(repo, ADMIN, {"limit": 50})[0]) == 2
    with pytest.raises(Forbidden):
        list_schools(repo, school_actor(a), {"limit": 50})


def test_district_staff_read_their_districts_visits_and_cannot_change_them(desk, repo,
                                                                            venues):
    tutor = add_tutor(venues)
    a = make_school(repo, "浦东一小", district="浦东新区")
    b = make_school(repo, "徐汇一小", district="徐汇区")
    mine = desk.visits.book(school_actor(a), visit_body(tutor))
    theirs = desk.visits.book(school_actor(b), visit_body(tutor))
    pudong = supervisor(a["district_id"])
    assert desk.visits.get(pudong, mine["_id"])["_id"] == mine["_id"]
    with pytest.raises(NotFound):
        desk.visits.get(pudong, theirs["_id"])
    assert [v["_id"] for v in desk.visits.list(pudong, {"limit": 50})[0]] == [mine["_id"]]
    assert [v["_id"] for v in desk.visits.list(finance(b["district_id"]), {"limit": 50})[0]
            ] == [theirs["_id"]]
    with pytest.raises(Forbidden):
        desk.visits.confirm(pudong, mine["_id"])
    with pytest.raises(Forbidden):
        desk.visits.cancel(pudong, mine["_id"], "no")
    view = desk.visits.views([mine])[0]
    assert (view["district_id"], view["district"]) == (a["district_id"], "浦东新区")


def test_adopting_district_ids_links_schools_claims_and_visits_once(desk, repo, venues):
    tutor = add_tutor(venues)
    legacy = register_school(repo, ADMIN, body(district="静安区"))
    visit = desk.visits.book(school_actor(legacy), visit_body(tutor))
    session = venues.add_session()
    claim = desk.claims.create(school_actor(legacy), {"session_id": session["session_id"],
                                                      "groups": [{"label": "一班", "grade": 5,
                                                                  "students": 30,
                                                                  "teachers": 2}]})
    assert repo.district_names() == {"静安区"}
    first = repo.adopt_district_ids({"静安区": "dis_jingan"})
    assert first == {"schools": 1, "claims": 1, "tutor_visits": 1}
    assert repo.district_names() == set()
    assert repo.adopt_district_ids({"静安区": "dis_jingan"}) == {
        "schools": 0, "claims": 0, "tutor_visits": 0}
    assert repo.school(legacy["_id"])["district_id"] == "dis_jingan"
    assert repo.claim(claim["_id"])["district_id"] == "dis_jingan"
    assert repo.visit(visit["_id"])["district_id"] == "dis_jingan"
    # the directory knows the district now, before identity's event arrives
    assert register_school(repo, ADMIN, body(district_id="dis_jingan"))["district"] == "静安区"
    reader = finance("dis_jingan")
    assert desk.visits.get(reader, visit["_id"])["_id"] == visit["_id"]


def test_the_migration_rpcs_are_for_admins(repo):
    service = worker_factory(BookingService, store=repo, actors=lambda d: verify(d, KEY))
    register_school(repo, ADMIN, body(district="静安区"))
    admin = sign(Actor.system("migrate"), KEY)
    assert service.district_names(admin) == ["静安区"]
    with pytest.raises(Forbidden):
        service.district_names(sign(finance("dis_x"), KEY))
    with pytest.raises(Forbidden):
        service.adopt_district_ids({"静安区": "dis_jingan"}, sign(supervisor("dis_x"), KEY))
    with pytest.raises(ValidationFailed):
        service.adopt_district_ids({"静安区": ""}, admin)
    assert service.adopt_district_ids({"静安区": "dis_jingan"}, admin)["schools"] == 1
