"""Tutor visits: finance reads only its district's; views show the venue as it is now."""

from __future__ import annotations

import pytest

from services.booking.schools import readable_school
from services.booking.tests.conftest import make_school, school_actor
from services.booking.tests.test_idempotency import add_tutor, visit_body
from services.kit.actor import Actor
from services.kit.errors import Forbidden, NotFound

PUDONG = Actor(sub="f-1", role="finance", org="dis_pudong")
XUHUI = Actor(sub="f-2", role="finance", org="dis_xuhui")
ADMIN = Actor(sub="ops", role="admin")

VENUE = {"venue_id": "ven_1", "name": "上海科技馆", "kind": "science_museum",
         "district": "浦东新区", "location": {"lat": 31.2, "lon": 121.5},
         "address": "世纪大道2000号", "timezone": "Asia/Shanghai"}


@pytest.fixture()
def visits(desk, repo, venues):
    """One visit booked by a 浦东新区 school and one by a 徐汇区 school."""
    tutor = add_tutor(venues)
    pudong = make_school(repo, "浦东小学", district="浦东新区")
    xuhui = make_school(repo, "徐汇小学", district="徐汇区")
    return (desk.visits.book(school_actor(pudong), visit_body(tutor)),
            desk.visits.book(school_actor(xuhui), visit_body(tutor)))


def test_finance_reads_only_its_districts_visits(desk, visits):
    pudong, xuhui = visits
    assert desk.visits.get(PUDONG, pudong["_id"])["_id"] == pudong["_id"]
    with pytest.raises(NotFound):
        desk.visits.get(PUDONG, xuhui["_id"])
    listed, _ = desk.visits.list(PUDONG, {"limit": 50})
    assert [v["_id"] for v in listed] == [pudong["_id"]]
    listed, _ = desk.visits.list(XUHUI, {"limit": 50})
    assert [v["_id"] for v in listed] == [xuhui["_id"]]
    assert len(desk.visits.list(ADMIN, {"limit": 50})[0]) == 2


def test_finance_without_an_organisation_is_refused(desk, visits):
    nobody = Actor(sub="f-3", role="finance", org=None)
    with pytest.raises(Forbidden):
        desk.visits.get(nobody, visits[0]["_id"])
    with pytest.raises(Forbidden):
        desk.visits.list(nobody, {"limit": 50})
    with pytest.raises(Forbidden):
        readable_school(nobody, {"school_id": "sch_1", "district_id": "dis_pudong"})


def test_finance_reads_only_its_districts_schools(repo):
    pudong = make_school(repo, "浦东小学", district="浦东新区")
    assert readable_school(PUDONG, pudong) is pudong
    with pytest.raises(NotFound):
        readable_school(XUHUI, pudong)
    with pytest.raises(Forbidden):
        readable_school(school_actor(make_school(repo, "别校")), pudong)
    assert readable_school(school_actor(pudong), pudong) is pudong
    with pytest.raises(Forbidden):
        readable_school(Actor(sub="v", role="venue", org="ven_1"), pudong)


def test_visit_views_follow_venue_edits(desk, repo, visits):
    repo.record_venue(VENUE)
    assert desk.visits.views([visits[0]])[0]["venue_name"] == "上海科技馆"
    repo.record_venue({**VENUE, "name": "上海科技馆(新馆)", "district": "徐汇区"})
    view = desk.visits.views([visits[0]])[0]
    assert (view["venue_name"], view["venue_district"]) == ("上海科技馆(新馆)", "徐汇区")


def test_visits_page_through_every_one_once(desk, repo, venues):
    tutor = add_tutor(venues)
    actor = school_actor(make_school(repo))
    made = {desk.visits.book(actor, visit_body(tutor))["_id"] for _ in range(5)}
    seen, cursor = [], None
    while True:
        docs, cursor = desk.visits.list(actor, {"limit": 2, "cursor": cursor})
        seen += [d["_id"] for d in docs]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
