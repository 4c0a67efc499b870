"""A retried creating call (the same Idempotency-Key) answers the first record, never a second.

The gateway forgets a key when its upstream call times out, so the service itself binds
the key (`once`): these tests retry at the service, as the gateway's retry would arrive.
"""

from __future__ import annotations

import pytest

from services.contracts.venues import SessionDraft, TutorRegistration
from services.kit.boundary import load
from services.kit.errors import ValidationFailed
from services.kit.outbox import pending
from services.venues.tests.conftest import ADMIN, staff
from services.venues.tests.helpers import BASE, at

TUTOR = {"name": "李老师", "level": "senior", "subjects": ["astronomy"],
         "certified_until": "2027-06-30"}
VENUE = {"name": "上海自然博物馆", "kind": "science_museum", "district": "静安区",
         "location": {"lat": 31.2355, "lon": 121.4612}, "address": "北京西路510号",
         "timezone": "Asia/Shanghai", "contact": None, "accessibility": None}


class Died(BaseException):
    """The process stopped mid-call: nothing after this line ran, no clean-up either."""


def one(**overrides):
    return load(SessionDraft, {**BASE, "starts_at": at(days=7), "ends_at": at(days=7, hours=2),
                               **overrides})


def series(**overrides):
    return one(starts_at="2026-09-30T07:00:00+08:00", ends_at="2026-09-30T08:30:00+08:00",
               repeat={"dates": ["2026-10-01", "2026-10-03", "2026-10-05"]}, **overrides)


def published_events(repo, series_id):
    found = []
    for doc in repo.db.series.find({"_id": series_id}):
        found += [env for _, env in pending(doc) if env["type"] == "venues.session_published"]
    return found


def test_a_retried_publish_answers_the_same_session_and_stores_one(repo, venue):
    own = staff(venue["_id"])
    draft = one(title="重试 Retry")
    first = repo.sessions.publish(venue, draft, own, "key-1")
    again = repo.sessions.publish(venue, draft, own, "key-1")
    assert again["session_id"] == first["session_id"]
    assert repo.db.sessions.count_documents({"title": "重试 Retry"}) == 1
    other = repo.sessions.publish(venue, draft, own, "key-2")
    assert other["session_id"] != first["session_id"]
    assert repo.db.sessions.count_documents({"title": "重试 Retry"}) == 2


def test_a_retry_after_dying_between_binding_and_writing_creates_once(repo, venue,
                                                                      monkeypatch):
    own = staff(venue["_id"])
    draft = one(title="断电 Power cut")

    def die(*args, **kwargs):
        raise Died()

    monkeypatch.setattr(repo.sessions.sessions, "insert_one", die)
    with pytest.raises(Died):
        repo.sessions.publish(venue, draft, own, "key-died")
    monkeypatch.undo()
    bound = repo.request_keys.bound("session", venue["_id"], "key-died")
    first = repo.sessions.publish(venue, draft, own, "key-died")
    again = repo.sessions.publish(venue, draft, own, "key-died")
    assert first["session_id"] == again["session_id"] == bound
    assert repo.db.sessions.count_documents({"title": "断电 Power cut"}) == 1


def test_a_key_reused_for_another_request_is_refused(repo, venue):
    own = staff(venue["_id"])
    repo.sessions.publish(venue, one(title="A"), own, "key-reused")
    with pytest.raises(ValidationFailed) as caught:
        repo.sessions.publish(venue, one(title="B"), own, "key-reused")
    assert "Idempotency-Key" in caught.value.errors
    assert repo.db.sessions.count_documents({}) == 1


def test_a_retried_series_answers_the_same_series(repo, venue):
    own = staff(venue["_id"])
    first = repo.sessions.publish(venue, series(), own, "key-series")
    again = repo.sessions.publish(venue, series(), own, "key-series")
    assert again["series_id"] == first["series_id"]
    assert [s["session_id"] for s in again["sessions"]] == \
        [s["session_id"] for s in first["sessions"]]
    assert repo.db.series.count_documents({}) == 1
    assert repo.db.sessions.count_documents({}) == 3


def test_a_series_retried_after_dying_half_way_completes_the_same_series(repo, venue,
                                                                         monkeypatch):
    own = staff(venue["_id"])

    def die(*args, **kwargs):
        raise Died()

    monkeypatch.setattr(repo.series.series, "insert_one", die)  # sessions in, no commit
    with pytest.raises(Died):
        repo.sessions.publish(venue, series(), own, "key-half")
    monkeypatch.undo()
    assert repo.db.sessions.count_documents({"published": False}) == 3
    answer = repo.sessions.publish(venue, series(), own, "key-half")
    assert answer["series_id"] == repo.request_keys.bound("series", venue["_id"], "key-half")
    assert len(answer["sessions"]) == 3
    assert repo.db.sessions.count_documents({}) == 3
    assert repo.db.sessions.count_documents({"published": True}) == 3
    assert len(published_events(repo, answer["series_id"])) == 3


def test_retried_tutor_and_venue_registrations_create_once(repo, venue):
    own = staff(venue["_id"])
    data = load(TutorRegistration, TUTOR)
    first = repo.tutors.register(venue, data, own, "key-tutor")
    assert repo.tutors.register(venue, data, own, "key-tutor") == first
    assert repo.db.tutors.count_documents({}) == 1
    made = repo.register_venue(VENUE, ADMIN, "key-venue")
    assert repo.register_venue(VENUE, ADMIN, "key-venue")["_id"] == made["_id"]
    assert repo.db.venues.count_documents({"name": "上海自然博物馆"}) == 1


def test_keys_of_different_kinds_and_venues_bind_apart(repo, venue):
    other = repo.register_venue({**VENUE, "name": "别馆 Annex"}, ADMIN)
    session = repo.sessions.publish(venue, one(), staff(venue["_id"]), "key-shared")
    elsewhere = repo.sessions.publish(other, one(), staff(other["_id"]), "key-shared")
    tutor = repo.tutors.register(venue, load(TutorRegistration, TUTOR), staff(venue["_id"]),
                                 "key-shared")
    assert len({session["session_id"], elsewhere["session_id"], tutor["tutor_id"]}) == 3
    assert all(doc.get("expires_at") is not None for doc in repo.db.request_keys.find())


def test_a_slow_first_attempt_finishing_after_its_retry_doubles_nothing(repo, venue):
    """The first attempt was only slow: it writes the same series after the retry did."""
    from services.venues.series import occurrence_id, occurrences
    from services.venues.sessions import new_session, published_event

    own = staff(venue["_id"])
    answer = repo.sessions.publish(venue, series(), own, "key-slow")
    series_id = answer["series_id"]
    draft = series()
    docs = [new_session(occurrence_id(series_id, i), draft, venue, o.starts_at, o.ends_at,
                        o.window_closes_at, series_id, False)
            for i, o in enumerate(occurrences(draft, "Asia/Shanghai"))]
    repo.series.publish(series_id, venue["_id"], docs, [published_event(d) for d in docs])
    assert repo.db.sessions.count_documents({}) == 3
    assert repo.db.sessions.count_documents({"published": True}) == 3
    assert repo.db.series.count_documents({}) == 1
    assert len(published_events(repo, series_id)) == 3
