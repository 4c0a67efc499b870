"""The entrypoints, on nameko's worker_factory: actors verified, answers scoped and shaped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from nameko.testing.services import worker_factory

from services.booking.service import BookingService
from services.booking.tests.conftest import group, make_school, school_actor
from services.booking.tests.test_idempotency import add_tutor, visit_body
from services.booking.tests.test_visits import VENUE
from services.kit import clock
from services.kit.actor import Actor, actor_key, sign, verify
from services.kit.errors import Forbidden, NotFound

KEY = actor_key("unit-test-secret")


@pytest.fixture()
def service(repo, venues):
    return worker_factory(BookingService, store=repo, venues=venues,
                          actors=lambda data: verify(data, KEY))


def signed(actor: Actor) -> dict:
    return sign(actor, KEY)


def body(session, label="一班"):
    return {"session_id": session["session_id"], "groups": [group(label)]}


def test_an_unsigned_or_forged_actor_is_refused(service, repo, venues):
    session = venues.add_session()
    school = make_school(repo)
    plain = school_actor(school).as_dict()
    with pytest.raises(Forbidden):
        service.create_claim(plain, body(session))
    forged = {**signed(school_actor(school)), "role": "admin"}
    with pytest.raises(Forbidden):
        service.list_claims(forged, {})
    with pytest.raises(Forbidden):
        service.get_school(plain, school["school_id"])
    assert repo.db.claims.count_documents({}) == 0


def test_a_school_reads_and_lists_only_its_own_claims(service, repo, venues):
    session = venues.add_session()
    mine, other = make_school(repo, "甲"), make_school(repo, "乙")
    made = service.create_claim(signed(school_actor(mine)), body(session), "k-1")
    assert made["status"] == "confirmed" and made["waitlist_position"] is None
    service.create_claim(signed(school_actor(other)), body(session, "二班"))
    listed = service.list_claims(signed(school_actor(mine)), {})
    assert [c["claim_id"] for c in listed["items"]] == [made["claim_id"]]
    with pytest.raises(NotFound):
        service.get_claim(signed(school_actor(other)), made["claim_id"])
    again = service.create_claim(signed(school_actor(mine)), body(session), "k-1")
    assert again["claim_id"] == made["claim_id"]


def test_finance_reads_the_schools_and_visits_of_its_district(service, repo, venues):
    school = make_school(repo, district="浦东新区")
    tutor = add_tutor(venues)
    visit = service.book_tutor_visit(signed(school_actor(school)), visit_body(tutor), "v-1")
    retried = service.book_tutor_visit(signed(school_actor(school)), visit_body(tutor), "v-1")
    assert retried["visit_id"] == visit["visit_id"]
    pudong = signed(Actor(sub="f-1", role="finance", org="dis_pudong"))
    xuhui = signed(Actor(sub="f-2", role="finance", org="dis_xuhui"))
    assert service.get_school(pudong, school["school_id"])["school_id"] == school["school_id"]
    assert service.get_tutor_visit(pudong, visit["visit_id"])["visit_id"] == visit["visit_id"]
    with pytest.raises(NotFound):
        service.get_school(xuhui, school["school_id"])
    with pytest.raises(NotFound):
        service.get_tutor_visit(xuhui, visit["visit_id"])
    assert service.list_tutor_visits(xuhui, {})["items"] == []


def test_venue_edits_reach_the_visit_views(service, repo, venues):
    """`venues.venue_updated` is heard: booking's directory (and so its views) follow edits."""
    school = make_school(repo)
    visit = service.book_tutor_visit(signed(school_actor(school)), visit_body(add_tutor(venues)))
    service.on_venue_registered.__wrapped__(service, {"data": VENUE})
    service.on_venue_updated.__wrapped__(service, {"data": {**VENUE, "name": "上海自然博物馆"}})
    shown = service.get_tutor_visit(signed(school_actor(school)), visit["visit_id"])
    assert shown["venue_name"] == "上海自然博物馆"


def test_a_moved_window_is_heard_from_venues(service, repo, venues, frozen_clock):
    session = venues.add_session(policy="window", window_closes_in=timedelta(hours=1))
    service.create_claim(signed(school_actor(make_school(repo))), body(session))
    later = clock.stamp(clock.now() + timedelta(hours=5))
    service.on_session_updated.__wrapped__(service, {"data": {
        "session_id": session["session_id"], "venue_id": "ven_1",
        "changed": ["window_closes_at"], "window_closes_at": later}})
    assert repo.allocation(session["session_id"])["closes_at"] == later
