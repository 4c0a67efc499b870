"""The service's entrypoints verify the signed actor before anything, and refuse absurd times.

Each entrypoint is called on a worker built by nameko's `worker_factory`, with the real
repository and the real verifier bound to a test key.
"""

from __future__ import annotations

import pytest
from nameko.testing.services import worker_factory

from services.kit.actor import Actor, actor_key, sign, verify
from services.kit.errors import Forbidden, ValidationFailed
from services.venues.service import VenuesService
from services.venues.tests.conftest import ADMIN, staff
from services.venues.tests.helpers import BASE, at, publish

KEY = actor_key("unit-test-secret")
VENUE = {"name": "上海天文馆", "kind": "planetarium", "district": "浦东新区",
         "location": {"lat": 30.8975, "lon": 121.9277}, "address": "临港大道380号"}


@pytest.fixture()
def service(repo):
    return worker_factory(VenuesService, store=repo, actors=lambda data: verify(data, KEY))


def signed(actor: Actor) -> dict:
    return sign(actor, KEY)


def draft(**overrides):
    return {**BASE, "starts_at": at(days=7), "ends_at": at(days=7, hours=2), **overrides}


def test_changing_calls_without_a_verified_actor_are_forbidden(service, repo, venue):
    sid = publish(repo, venue)["session_id"]
    vid = venue["_id"]
    forged = {**signed(staff(vid)), "role": "admin", "org": None}
    for actor in (None, staff(vid).as_dict(), forged):
        calls = [
            lambda a: service.register_venue(VENUE, a),
            lambda a: service.update_venue(vid, {"name": "Taken"}, a),
            lambda a: service.publish_session(vid, draft(), a),
            lambda a: service.update_session(sid, {"capacity": 60}, a),
            lambda a: service.cancel_session(sid, {"reason": "no"}, a),
            lambda a: service.register_tutor(vid, {"name": "王老师", "level": "senior",
                                                   "subjects": ["天文"],
                                                   "certified_until": "2027-12-31"}, a),
            lambda a: service.list_tutors(vid, a),
        ]
        for call in calls:
            with pytest.raises(Forbidden):
                call(actor)
    assert repo.db.sessions.count_documents({}) == 1
    assert repo.db.venues.count_documents({}) == 1 and repo.db.tutors.count_documents({}) == 0


def test_only_a_signed_admin_registers_a_venue(service, repo):
    with pytest.raises(Forbidden):
        service.register_venue(VENUE, signed(Actor(sub="v", role="venue", org="ven_x")))
    venue = service.register_venue(VENUE, signed(ADMIN))
    assert venue["name"] == "上海天文馆" and repo.db.venues.count_documents({}) == 1


def test_signed_staff_publish_and_change_their_own_sessions(service, venue):
    own = signed(staff(venue["_id"]))
    session = service.publish_session(venue["_id"], draft(), own)
    changed = service.update_session(session["session_id"], {"capacity": 80}, own)
    assert changed["capacity"] == 80
    with pytest.raises(Forbidden):
        service.update_session(session["session_id"], {"capacity": 90},
                               signed(staff("ven_other")))


@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
@pytest.mark.parametrize("when", ["0271-06-05T22:21:49.692300+00:00",
                                  "0500-06-05T22:21:49.692300+00:00",
                                  "500-06-05T22:21:49.692300+00:00",
                                  "2101-06-05T22:21:49+00:00",
                                  "9999-12-31T23:59:59-05:00"])
def test_a_session_in_an_absurd_year_is_a_422_naming_the_field(service, repo, venue, field,
                                                               when):
    own = signed(staff(venue["_id"]))
    with pytest.raises(ValidationFailed) as caught:
        service.publish_session(venue["_id"], draft(**{field: when}), own)
    assert field in caught.value.errors, caught.value.errors
    sid = publish(repo, venue)["session_id"]
    with pytest.raises(ValidationFailed) as caught:
        service.update_session(sid, {field: when}, own)
    assert field in caught.value.errors, caught.value.errors
    assert repo.db.sessions.count_documents({}) == 1


def test_a_series_date_in_an_absurd_year_is_a_422_naming_it(service, repo, venue):
    own = signed(staff(venue["_id"]))
    for repeat, field in (({"dates": ["0500-06-05"]}, "repeat"),
                          ({"weekly": {"weekdays": [6], "until": "9999-01-01"}}, "repeat")):
        with pytest.raises(ValidationFailed) as caught:
            service.publish_session(venue["_id"], draft(repeat=repeat), own)
        assert any(name.startswith(field) for name in caught.value.errors), caught.value.errors
    assert repo.db.sessions.count_documents({}) == 0


def test_catalogue_bounds_in_an_absurd_year_are_a_422_naming_them(service):
    for name, value in (("from", "0500-01-01"), ("to", "0001-01-01"),
                        ("from", "0271-06-05T22:21:49+00:00")):
        with pytest.raises(ValidationFailed) as caught:
            service.catalogue({name: value})
        assert name in caught.value.errors, caught.value.errors
