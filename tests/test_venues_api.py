"""The venues API: publishing, validation, ownership, changes and their events."""

from __future__ import annotations

import uuid

import pytest

from services.kit.errors import Forbidden
from tests.support import problem, wait_for
from tests.venues_helpers import Staff, VenueEvents, draft, iso, signed

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def events(stack, settings_env):
    tap = VenueEvents(settings_env["AMQP_URL"])
    yield tap
    tap.close()


@pytest.fixture(scope="module")
def staff(api):
    return Staff(api, name="中国科学技术馆 China Science and Technology Museum",
                 location={"lat": 40.0046, "lon": 116.3870}, district="朝阳区",
                 address="北京市朝阳区北辰东路5号")


def test_publish_answers_the_session_and_announces_it(staff, api, events):
    response = staff.client.post(f"/v1/venues/{staff.id}/sessions",
                                 json=draft(what_to_bring="水杯", cancel_cutoff_hours=48))
    assert response.status_code == 201, response.text
    session = response.json()
    assert response.headers["Location"] == f"/v1/sessions/{session['session_id']}"
    assert (session["status"], session["seats_left"], session["capacity"]) == ("open", 60, 60)
    assert session["venue"]["name"].startswith("中国科学技术馆")
    assert session["timezone"] == "Asia/Shanghai" and session["cancel_cutoff_hours"] == 48
    school = api.as_("school", "sch_reader")
    assert school.get(f"/v1/sessions/{session['session_id']}").json() == session
    wait_for(lambda: events.of("venues.session_published", session_id=session["session_id"]),
             message="session_published on the broker")
    problem(school.get("/v1/sessions/ses_nowhere"), 404)


def test_a_repeated_idempotency_key_publishes_once(staff):
    key = uuid.uuid4().hex
    body = draft(title=f"Idempotent {key[:6]}")
    first = staff.client.post(f"/v1/venues/{staff.id}/sessions", json=body,
                              headers={"Idempotency-Key": key})
    again = staff.client.post(f"/v1/venues/{staff.id}/sessions", json=body,
                              headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert [s["title"] for s in staff.sessions()].count(body["title"]) == 1


def test_the_service_binds_the_key_so_a_retry_the_gateway_forgot_creates_nothing(staff, rpc):
    """The gateway passes the Idempotency-Key on; the venues service answers a retry of it
    (as after a gateway timeout, which the gateway does not remember) with the first record."""
    key = uuid.uuid4().hex
    body = draft(title=f"Forgotten {key[:6]}")
    first = staff.client.post(f"/v1/venues/{staff.id}/sessions", json=body,
                              headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    retried = rpc.venues.publish_session(staff.id, body, actor=signed("venue", staff.id),
                                         request_key=key)
    assert retried["session_id"] == first.json()["session_id"]
    assert [s["title"] for s in staff.sessions()].count(body["title"]) == 1
    weekly = draft(title=f"Series {key[:6]}", starts_at=iso(days=3), ends_at=iso(days=3, hours=1),
                   repeat={"weekly": {"weekdays": [1, 3, 5], "until": iso(days=20)[:10]}})
    made = staff.client.post(f"/v1/venues/{staff.id}/sessions", json=weekly,
                             headers={"Idempotency-Key": key + "-series"})
    assert made.status_code == 201, made.text
    again = rpc.venues.publish_session(staff.id, weekly, actor=signed("venue", staff.id),
                                       request_key=key + "-series")
    assert again["series_id"] == made.json()["series_id"]
    assert [s["session_id"] for s in again["sessions"]] == \
        [s["session_id"] for s in made.json()["sessions"]]
    assert [s["title"] for s in staff.sessions()].count(weekly["title"]) == \
        len(again["sessions"])


RULES = [  # (what is sent, the field the answer must name)
    ({"ends_at": iso(days=9)}, "ends_at"),
    ({"starts_at": iso(hours=-1), "ends_at": iso(hours=1)}, "starts_at"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": 10_001}, "capacity"),
    ({"grades": [0, 6]}, "grades.0"),
    ({"grades": [3, 13]}, "grades.1"),
    ({"grades": [6, 3]}, "grades"),
    ({"price_fen": -100}, "price_fen"),
    ({"claim_policy": "window"}, "window_closes_at"),
    ({"claim_policy": "window", "window_closes_at": iso(days=11)}, "window_closes_at"),
    ({"max_seats_per_school": 61}, "max_seats_per_school"),
    ({"min_teachers_per_students": {"teachers": 1, "per_students": 0}},
     "min_teachers_per_students.per_students"),
    ({"category": "cooking"}, "category"),
    ({"title": ""}, "title"),
    ({"repeat": {"dates": ["2020-01-01"]}}, "repeat.dates.0"),
    ({"repeat": {"weekly": {"weekdays": [8], "until": "2030-01-01"}}}, "repeat.weekly.weekdays.0"),
    # hardening #16.5: absurd years were a 500 (a short-year stamp that would not parse)
    ({"starts_at": "0500-06-05T22:21:49.692300+00:00"}, "starts_at"),
    ({"ends_at": "0271-06-05T22:21:49.692300+00:00"}, "ends_at"),
    ({"starts_at": "2101-06-05T09:00:00+08:00"}, "starts_at"),
    ({"repeat": {"dates": ["0500-06-05"]}}, "repeat.dates.0"),
]


@pytest.mark.parametrize(("change", "field"), RULES, ids=[f for _, f in RULES])
def test_each_rule_answers_422_naming_the_field_and_stores_nothing(staff, change, field):
    before = staff.sessions()
    body = problem(staff.client.post(f"/v1/venues/{staff.id}/sessions", json=draft(**change)),
                   422)
    assert field in body["errors"], body
    assert staff.sessions() == before


def test_other_venues_and_schools_cannot_change_a_session(staff, api):
    session = staff.publish()
    sid = session["session_id"]
    rival = api.as_("venue", "ven_rival")
    school = api.as_("school", "sch_curious")
    problem(rival.patch(f"/v1/sessions/{sid}", json={"capacity": 5}), 403)
    problem(rival.post(f"/v1/sessions/{sid}/cancel", json={"reason": "mine now"}), 403)
    problem(rival.post(f"/v1/venues/{staff.id}/sessions", json=draft()), 403)
    problem(rival.patch(f"/v1/venues/{staff.id}", json={"name": "Taken over"}), 403)
    problem(school.patch(f"/v1/sessions/{sid}", json={"capacity": 5}), 403)
    problem(school.post(f"/v1/sessions/{sid}/cancel", json={"reason": "no"}), 403)
    problem(school.post(f"/v1/venues/{staff.id}/sessions", json=draft()), 403)
    problem(staff.client.patch("/v1/sessions/ses_nowhere", json={"capacity": 5}), 404)
    assert staff.client.get(f"/v1/sessions/{sid}").json() == session


def test_capacity_changes_respect_held_seats_and_are_announced(staff, rpc, events):
    sid = staff.publish(capacity=50)["session_id"]
    assert rpc.venues.hold(sid, "clm_api_cap", "sch_api", 30)["ok"]
    body = problem(staff.client.patch(f"/v1/sessions/{sid}", json={"capacity": 29}), 409)
    assert "capacity" in body["errors"]
    problem(staff.client.patch(f"/v1/sessions/{sid}", json={"capacity": "many"}), 422)
    grown = staff.client.patch(f"/v1/sessions/{sid}", json={"capacity": 80})
    assert grown.status_code == 200, grown.text
    assert (grown.json()["capacity"], grown.json()["seats_left"]) == (80, 50)
    wait_for(lambda: events.of("venues.capacity_changed", session_id=sid, capacity=80,
                               seats_left=50), message="capacity_changed")
    assert rpc.venues.seats(sid)["holds"] == {"clm_api_cap": 30}


def test_reschedule_is_announced_with_old_and_new_times(staff, events):
    session = staff.publish()
    sid = session["session_id"]
    moved = staff.client.patch(f"/v1/sessions/{sid}", json={
        "starts_at": "2027-05-20T09:00:00+08:00", "ends_at": "2027-05-20T11:00:00+08:00"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["starts_at"] == "2027-05-20T01:00:00.000000Z"
    [announced] = wait_for(lambda: events.of("venues.session_rescheduled", session_id=sid),
                           message="session_rescheduled")
    assert announced["data"]["previous_starts_at"] == session["starts_at"]
    assert announced["data"]["starts_at"] == "2027-05-20T01:00:00.000000Z"
    body = problem(staff.client.patch(f"/v1/sessions/{sid}", json={
        "ends_at": "2027-05-20T08:00:00+08:00"}), 422)
    assert "ends_at" in body["errors"]
    problem(staff.client.patch(f"/v1/sessions/{sid}", json={}), 422)


def test_cancel_hides_the_session_refuses_holds_and_is_announced_once(staff, api, rpc, events):
    sid = staff.publish()["session_id"]
    problem(staff.client.post(f"/v1/sessions/{sid}/cancel", json={}), 422)
    cancelled = staff.client.post(f"/v1/sessions/{sid}/cancel", json={"reason": "闭馆检修"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = staff.client.post(f"/v1/sessions/{sid}/cancel", json={"reason": "again"})
    assert again.json()["cancel_reason"] == "闭馆检修"
    assert rpc.venues.hold(sid, "clm_api_late", "sch_api", 1)["reason"] == "cancelled"
    menu = api.as_("school", "sch_menu").get("/v1/sessions", params={"venue_id": staff.id})
    assert sid not in {s["session_id"] for s in menu.json()["items"]}
    wait_for(lambda: events.of("venues.session_cancelled", session_id=sid, reason="闭馆检修"),
             message="session_cancelled")
    problem(staff.client.patch(f"/v1/sessions/{sid}", json={"capacity": 10}), 409)
    assert len(events.of("venues.session_cancelled", session_id=sid)) == 1


def test_venue_staff_edit_their_venue_and_sessions_follow(api, events):
    own = Staff(api, name="天文馆 Planetarium", kind="planetarium")
    sid = own.publish()["session_id"]
    body = problem(own.client.patch(f"/v1/venues/{own.id}", json={"kind": "castle"}), 422)
    assert "kind" in body["errors"]
    problem(own.client.patch(f"/v1/venues/{own.id}", json={"timezone": "UTC"}), 422)
    edited = own.client.patch(f"/v1/venues/{own.id}", json={
        "name": "上海天文馆 Shanghai Astronomy Museum", "address": "临港大道380号",
        "location": {"lat": 30.8975, "lon": 121.9277}})
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "上海天文馆 Shanghai Astronomy Museum"
    venue = own.client.get(f"/v1/sessions/{sid}").json()["venue"]
    assert venue["address"] == "临港大道380号" and venue["location"]["lat"] == 30.8975
    wait_for(lambda: events.of("venues.venue_updated", venue_id=own.id), message="venue_updated")


def test_tutors_registered_listed_and_renewed_by_their_venue(staff, api, rpc, events):
    body = {"name": "王老师", "level": "senior", "subjects": ["天文", "robotics"],
            "certified_until": "2027-12-31"}
    problem(staff.client.post(f"/v1/venues/{staff.id}/tutors",
                              json={**body, "certified_until": "2020-01-01"}), 422)
    problem(staff.client.post(f"/v1/venues/{staff.id}/tutors", json={**body, "level": "x"}),
            422)
    created = staff.client.post(f"/v1/venues/{staff.id}/tutors", json=body)
    assert created.status_code == 201, created.text
    tutor = created.json()
    assert tutor["bookable"] and tutor["venue_id"] == staff.id
    assert rpc.venues.get_tutor(tutor["tutor_id"]) == tutor
    assert not rpc.venues.get_tutor(tutor["tutor_id"], on="2028-01-01")["bookable"]
    wait_for(lambda: events.of("venues.tutor_registered", tutor_id=tutor["tutor_id"]),
             message="tutor_registered")
    listed = staff.client.get(f"/v1/venues/{staff.id}/tutors").json()["items"]
    assert tutor["tutor_id"] in {t["tutor_id"] for t in listed}
    assert api.as_("school", "sch_inviter").get(f"/v1/venues/{staff.id}/tutors").status_code \
        == 200
    problem(api.as_("venue", "ven_rival").get(f"/v1/venues/{staff.id}/tutors"), 403)
    problem(api.as_("venue", "ven_rival").post(f"/v1/venues/{staff.id}/tutors", json=body), 403)
    problem(api.as_("school", "sch_x").post(f"/v1/venues/{staff.id}/tutors", json=body), 403)
    renewed = staff.client.patch(f"/v1/venues/{staff.id}/tutors/{tutor['tutor_id']}",
                                 json={"certified_until": "2029-06-30"})
    assert renewed.status_code == 200 and renewed.json()["certified_until"] == "2029-06-30"


def test_venue_and_tutor_retries_bind_in_the_service_and_unsigned_callers_are_refused(
        api, staff, rpc):
    key = uuid.uuid4().hex
    body = {"name": f"重试馆 {key[:6]}", "kind": "zoo", "district": "徐汇区",
            "location": {"lat": 31.19, "lon": 121.43}, "address": "虹桥路2381号"}
    admin = api.minted("admin", sub="admin-test")  # a venue key binds per admin: as signed()
    made = admin.post("/v1/venues", json=body, headers={"Idempotency-Key": key})
    assert made.status_code == 201, made.text
    again = rpc.venues.register_venue(body, actor=signed("admin"), request_key=key)
    assert again["venue_id"] == made.json()["venue_id"]
    tutor = {"name": "赵老师", "level": "junior", "subjects": ["动物"],
             "certified_until": "2027-12-31"}
    first = staff.client.post(f"/v1/venues/{staff.id}/tutors", json=tutor,
                              headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    retried = rpc.venues.register_tutor(staff.id, tutor, actor=signed("venue", staff.id),
                                        request_key=key)
    assert retried["tutor_id"] == first.json()["tutor_id"]
    for unsigned in (None, {"sub": "x", "role": "admin", "org": None}):
        with pytest.raises(Forbidden):
            rpc.venues.register_venue(body, actor=unsigned)
        with pytest.raises(Forbidden):
            rpc.venues.publish_session(staff.id, draft(), actor=unsigned)
