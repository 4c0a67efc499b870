"""Claims through the gateway against the running services (issue 4)."""

from __future__ import annotations

import os
import random
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from services.kit.actor import Actor, actor_key, sign
from services.kit.errors import ValidationFailed
from tests.booking_helpers import School, Venue, group, iso
from tests.support import problem, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def venue(stack, api):
    return Venue(api, name="上海科技馆 claims")


def seats(rpc, session_id):
    return rpc.venues.seats(session_id)


def test_burst_of_200_claims_on_100_seats_never_oversells(stack, api, rpc, venue):
    session = venue.publish(capacity=100)
    schools = [School(api, name=f"学校{i}") for i in range(40)]
    rng = random.Random(7)

    def one(i):
        school = schools[i % len(schools)]
        size = rng.randint(3, 12)
        response = school.claim(session["session_id"], group(f"{i}班", students=size,
                                                             teachers=1),
                                waitlist=bool(i % 2))
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(200)))
    assert all(code == 201 for code, _ in results), [r for r in results if r[0] != 201][:3]
    statuses = [body["status"] for _, body in results]
    assert set(statuses) <= {"confirmed", "waitlisted", "rejected"}
    confirmed = [body for _, body in results if body["status"] == "confirmed"]
    held = seats(rpc, session["session_id"])
    assert sum(c["seats"] for c in confirmed) == 100 - held["seats_left"] <= 100
    assert {c["claim_id"]: c["seats"] for c in confirmed} == held["holds"]
    for _, body in results:  # every answer matches what is stored
        stored = schools[0].client.get(f"/v1/claims/{body['claim_id']}")
        if stored.status_code == 200:
            assert stored.json()["status"] == body["status"]


def test_validation_names_each_field(api, venue):
    session = venue.publish(grades=[1, 3],
                            min_teachers_per_students={"teachers": 1, "per_students": 10})
    school = School(api)
    body = problem(school.claim(session["session_id"],
                                group("一班", grade=2, students=30, teachers=1),
                                group("五班", grade=5, teachers=3)), 422)
    assert set(body["errors"]) == {"groups.0.teachers", "groups.1.grade"}
    body = problem(school.claim("ses_missing", group("一班", grade=2, teachers=3)), 422)
    assert set(body["errors"]) == {"session_id"}
    body = problem(school.claim(session["session_id"]), 422)
    assert "groups" in body["errors"]
    body = problem(school.claim(session["session_id"], group("一班", grade=2, teachers=3),
                                group("一班", grade=2, teachers=3)), 422)
    assert "groups" in body["errors"]
    body = problem(school.claim(session["session_id"],
                                {"label": "", "grade": 0, "students": -1, "teachers": 1}), 422)
    assert {"groups.0.label", "groups.0.grade", "groups.0.students"} <= set(body["errors"])
    family = venue.publish(audience="family")
    body = problem(school.claim(family["session_id"], group("一班")), 422)
    assert "session_id" in body["errors"]
    limited = venue.publish(max_seats_per_school=40)
    body = problem(school.claim(limited["session_id"], group("一班"), group("二班")), 422)
    assert "groups" in body["errors"]


def test_idempotency_key_returns_the_first_claim_and_holds_once(api, rpc, venue):
    session = venue.publish(capacity=50)
    school = School(api)
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = school.client.post("/v1/claims", headers=key, json={
        "session_id": session["session_id"], "groups": [group("一班")]})
    again = school.client.post("/v1/claims", headers=key, json={
        "session_id": session["session_id"], "groups": [group("一班")]})
    assert first.status_code == again.status_code == 201
    assert first.json()["claim_id"] == again.json()["claim_id"]
    assert seats(rpc, session["session_id"])["seats_left"] == 50 - 32


def as_school(school_id):
    """A school actor as the gateway signs it: booking called directly, as the gateway does
    when it leaves repeats of a claim to booking."""
    return sign(Actor(sub=f"t-{school_id}", role="school", org=school_id),
                actor_key(os.environ["KEPU_JWT_SECRET"]))


def test_booking_answers_repeats_of_a_keyed_claim_itself(api, rpc, venue):
    session = venue.publish(capacity=64)
    school = School(api)
    key = uuid.uuid4().hex
    body = {"session_id": session["session_id"], "groups": [group("一班")]}

    def send(_):
        return rpc.booking.create_claim(as_school(school.id), body, key)

    with ThreadPoolExecutor(max_workers=6) as pool:  # the same request, all at once
        answers = list(pool.map(send, range(6)))
    assert {a["claim_id"] for a in answers} == {answers[0]["claim_id"]}
    assert {a["status"] for a in answers} == {"confirmed"}
    assert send(0) == answers[0]  # and later, the same answer
    assert seats(rpc, session["session_id"])["holds"] == {answers[0]["claim_id"]: 32}
    with pytest.raises(ValidationFailed) as refused:
        rpc.booking.create_claim(as_school(school.id), {**body, "groups": [group("二班")]},
                                 key)
    assert refused.value.code == "idempotency-key-reused"


def test_a_session_edited_between_claims_is_checked_again(api, venue):
    session = venue.publish(capacity=100)
    sid = session["session_id"]
    first, second = School(api), School(api)
    assert first.claim(sid, group("一班")).json()["status"] == "confirmed"  # booking keeps it
    edited = venue.client.patch(f"/v1/sessions/{sid}", json={
        "min_teachers_per_students": {"teachers": 1, "per_students": 10},
        "title": "星空探秘 (新)"})
    assert edited.status_code == 200, edited.text
    body = problem(second.claim(sid, group("二班", students=30, teachers=2)), 422)
    assert "groups.0.teachers" in body["errors"]
    made = second.claim(sid, group("三班", students=30, teachers=3)).json()
    assert (made["status"], made["trip"]["title"]) == ("confirmed", "星空探秘 (新)")


def test_cancellation_promotes_the_waitlist_in_order(api, rpc, venue):
    session = venue.publish(capacity=64)
    a, b, c, d = (School(api, name=n) for n in ("甲校", "乙校", "丙校", "丁校"))
    first = a.claim(session["session_id"], group("一班")).json()
    b.claim(session["session_id"], group("一班"))
    third = c.claim(session["session_id"], group("一班")).json()
    fourth = d.claim(session["session_id"], group("一班")).json()
    assert (first["status"], third["status"], fourth["status"]) == (
        "confirmed", "waitlisted", "waitlisted")
    cancelled = a.client.post(f"/v1/claims/{first['claim_id']}/cancel",
                              json={"reason": "改期"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert c.client.get(f"/v1/claims/{third['claim_id']}").json()["status"] == "confirmed"
    assert d.client.get(f"/v1/claims/{fourth['claim_id']}").json()["status"] == "waitlisted"
    history = c.client.get(f"/v1/claims/{third['claim_id']}").json()["history"]
    assert [h["status"] for h in history] == ["pending", "waitlisted", "pending", "confirmed"]
    assert seats(rpc, session["session_id"])["seats_left"] == 0


def test_venue_cancelling_a_session_cancels_every_claim(api, rpc, venue):
    session = venue.publish(capacity=70)
    schools = [School(api) for _ in range(3)]
    claims = [s.claim(session["session_id"], group("一班")).json() for s in schools]
    response = venue.client.post(f"/v1/sessions/{session['session_id']}/cancel",
                                 json={"reason": "场馆临时闭馆"})
    assert response.status_code == 200, response.text

    def all_cancelled():
        got = [s.client.get(f"/v1/claims/{c['claim_id']}").json()
               for s, c in zip(schools, claims, strict=True)]
        return all(g["status"] == "cancelled" for g in got) and got

    got = wait_for(all_cancelled, timeout=20, message="every claim cancelled")
    assert {g["reason"] for g in got} == {"场馆临时闭馆"}


def test_a_school_cannot_read_cancel_or_claim_as_another(api, venue):
    session = venue.publish()
    mine, other = School(api), School(api)
    claim = mine.claim(session["session_id"], group("一班")).json()
    problem(other.client.get(f"/v1/claims/{claim['claim_id']}"), 404)
    problem(other.client.post(f"/v1/claims/{claim['claim_id']}/cancel", json={}), 404)
    listed = other.client.get("/v1/claims").json()["items"]
    assert claim["claim_id"] not in {c["claim_id"] for c in listed}
    assert claim["claim_id"] in {c["claim_id"] for c in
                                 mine.client.get("/v1/claims").json()["items"]}
    forged = api.as_("school", mine.id).post(  # a token for school X only ever claims for X
        "/v1/claims", json={"session_id": session["session_id"], "groups": [group("二班")],
                            "school_id": other.id})
    problem(forged, 422)
    problem(api.as_("venue", venue.id).post("/v1/claims", json={}), 403)


def test_the_venue_sees_claims_on_its_sessions_and_records_attendance(api, venue):
    session = venue.publish(starts_at=iso(timedelta(seconds=4)),
                            ends_at=iso(timedelta(hours=2)))
    school = School(api)
    claim = school.claim(session["session_id"], group("一班", students=30)).json()
    assert claim["status"] == "confirmed"
    listed = venue.client.get(f"/v1/claims?session_id={session['session_id']}").json()
    assert [c["claim_id"] for c in listed["items"]] == [claim["claim_id"]]
    body = {"records": [{"claim_id": claim["claim_id"], "students": 28, "teachers": 2}]}
    early = venue.client.post(f"/v1/sessions/{session['session_id']}/attendance", json=body)
    if early.status_code == 409:  # recorded only once the session has started
        wait_for(lambda: venue.client.post(f"/v1/sessions/{session['session_id']}/attendance",
                                           json=body).status_code == 200, timeout=15)
    stored = school.client.get(f"/v1/claims/{claim['claim_id']}").json()
    assert stored["attendance"]["students"] == 28 and stored["attendance"]["no_show"] is False
    other_venue = api.as_("venue", "ven_other")
    problem(other_venue.post(f"/v1/sessions/{session['session_id']}/attendance", json=body),
            403)
