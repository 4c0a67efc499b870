"""Batch claims (分期分批), window allocation, crash recovery and tutor visits (issue 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pymongo
import pytest

from deploy.stack import ROOT
from services.contracts.terms import SHANGHAI
from services.kit.actor import Actor, actor_key, sign
from tests.booking_helpers import School, Venue, group, iso
from tests.support import problem, wait_for

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def venue(stack, api):
    return Venue(api, name="上海天文馆 batches")


def held_by(rpc, session_ids, claim_prefix):
    holds = {}
    for sid in session_ids:
        for claim_id, seats in rpc.venues.seats(sid)["holds"].items():
            if claim_id.startswith(claim_prefix):
                holds[claim_id] = seats
    return holds


def test_batch_best_effort_packs_earliest_preferred_sessions(api, venue):
    s1, s2 = venue.publish(capacity=70), venue.publish(capacity=70)
    school = School(api)
    response = school.client.post("/v1/claim-batches", json={
        "groups": [group(f"五年级({i})班") for i in range(1, 6)],
        "session_ids": [s1["session_id"], s2["session_id"]], "mode": "best_effort"})
    assert response.status_code == 201, response.text
    batch = response.json()
    placed = [(a["label"], a["session_id"], a["status"]) for a in batch["assignments"]]
    assert placed[:4] == [("五年级(1)班", s1["session_id"], "confirmed"),
                          ("五年级(2)班", s1["session_id"], "confirmed"),
                          ("五年级(3)班", s2["session_id"], "confirmed"),
                          ("五年级(4)班", s2["session_id"], "confirmed")]
    assert placed[4][2] == "unplaced"


def test_batch_all_or_nothing_that_cannot_fit_holds_nothing(api, rpc, venue):
    s1, s2 = venue.publish(capacity=40), venue.publish(capacity=40)
    school = School(api)
    response = school.client.post("/v1/claim-batches", json={
        "groups": [group("一班"), group("二班"), group("三班")],
        "session_ids": [s1["session_id"], s2["session_id"]], "mode": "all_or_nothing"})
    assert response.status_code == 201
    assert response.json()["status"] == "failed"
    for sid in (s1["session_id"], s2["session_id"]):
        assert rpc.venues.seats(sid)["holds"] == {}
    problem(school.client.post("/v1/claim-batches", json={
        "groups": [group("一班")], "session_ids": [s1["session_id"], s1["session_id"]],
        "mode": "sometimes"}), 422)


def test_booking_killed_mid_batch_leaves_all_or_none_of_its_holds(stack, api, rpc, venue):
    sessions = [venue.publish(capacity=100) for _ in range(3)]
    ids = [s["session_id"] for s in sessions]
    school = School(api)
    key = uuid.uuid4().hex
    stack.restart("booking", {"KEPU_BOOKING_FAULT": "mid_batch"})
    answers = []

    def send():
        answers.append(school.client.post("/v1/claim-batches", headers={"Idempotency-Key": key},
                                          timeout=90, json={
            "groups": [group(f"{i}班", students=40) for i in range(1, 7)],
            "session_ids": ids, "mode": "all_or_nothing"}))

    sender = threading.Thread(target=send)
    sender.start()
    wait_for(lambda: stack.procs["booking"].poll() is not None, timeout=30,
             message="booking killed itself after the first hold")
    stack.start("booking")
    sender.join(timeout=120)
    client = pymongo.MongoClient(stack.env["MONGO_URL"], tz_aware=True)
    try:
        batches = list(client.kepu_booking.batches.find({"school_id": school.id}))
        assert len(batches) == 1  # the redelivered request found the first batch by its key
        batch_id = batches[0]["_id"]
        settled = wait_for(lambda: client.kepu_booking.batches.find_one(
            {"_id": batch_id, "state": {"$in": ["completed", "failed"]}}), timeout=60,
            message="the restarted service finishes or undoes the batch")
    finally:
        client.close()
    holds = held_by(rpc, ids, batch_id.replace("bat_", "clm_"))
    assert len(holds) in (0, 3), holds  # 6 classes of 42 seats: two per session, or none
    assert (settled["state"] == "completed") == (len(holds) == 3)


def test_window_allocation_is_fair_reproducible_and_explained(stack, api, rpc, venue,
                                                              settings_env):
    session = venue.publish(capacity=64, claim_policy="window",
                            window_closes_at=iso(timedelta(seconds=6)))
    city = [School(api, name=f"城区小学{i}") for i in range(4)]
    rural = School(api, name="乡村小学", rural=True)
    claims = [s.claim(session["session_id"], group("一班")).json() for s in city + [rural]]
    assert {c["status"] for c in claims} == {"pending"}

    def allocated():
        got = [s.client.get(f"/v1/claims/{c['claim_id']}").json()["status"]
               for s, c in zip(city + [rural], claims, strict=True)]
        return "pending" not in got and got

    statuses = wait_for(allocated, timeout=40, message="allocation after the window closed")
    assert statuses[-1] == "confirmed"  # the rural school is placed first
    assert statuses.count("confirmed") == 2 and statuses.count("waitlisted") == 3
    explained = subprocess.run(
        [sys.executable, "-m", "services.kit.cli", "allocation", "explain",
         session["session_id"]], cwd=ROOT, env=settings_env, capture_output=True, text=True,
        timeout=60)
    assert explained.returncode == 0, explained.stderr
    result = json.loads(explained.stdout)
    assert result["reproduced"] is True and len(result["seed"]) == 32
    assert result["order"][0]["school_id"] == rural.id
    held = rpc.venues.seats(session["session_id"])
    assert sorted(held["holds"]) == sorted(c["claim_id"] for c, s in zip(
        claims, statuses, strict=True) if s == "confirmed")


def test_tutor_visit_is_booked_delivered_and_confirmed_by_its_owners(api, venue):
    tutor = venue.client.post(f"/v1/venues/{venue.id}/tutors", json={
        "name": "王老师", "level": "senior", "subjects": ["astronomy"],
        "certified_until": "2030-12-31"})
    assert tutor.status_code == 201, tutor.text
    tutor_id = tutor.json()["tutor_id"]
    school, other = School(api), School(api)
    today = datetime.now(SHANGHAI).date().isoformat()
    booked = school.client.post("/v1/tutor-visits", json={
        "tutor_id": tutor_id, "date": today, "hours": 2, "students": 45})
    assert booked.status_code == 201, booked.text
    visit = booked.json()
    assert visit["status"] == "booked" and visit["tutor_level"] == "senior"
    problem(school.client.post(f"/v1/tutor-visits/{visit['visit_id']}/confirm"), 409)
    problem(school.client.post(f"/v1/tutor-visits/{visit['visit_id']}/deliver"), 403)
    problem(api.as_("venue", "ven_other").post(
        f"/v1/tutor-visits/{visit['visit_id']}/deliver"), 404)
    delivered = venue.client.post(f"/v1/tutor-visits/{visit['visit_id']}/deliver")
    assert delivered.status_code == 200 and delivered.json()["status"] == "delivered"
    problem(other.client.post(f"/v1/tutor-visits/{visit['visit_id']}/confirm"), 404)
    confirmed = school.client.post(f"/v1/tutor-visits/{visit['visit_id']}/confirm")
    assert confirmed.json()["status"] == "confirmed"
    assert [h["status"] for h in confirmed.json()["history"]] == [
        "booked", "delivered", "confirmed"]


def test_an_expired_tutor_cannot_be_booked(api, venue):
    tutor = venue.client.post(f"/v1/venues/{venue.id}/tutors", json={
        "name": "李老师", "level": "junior", "subjects": ["biology"],
        "certified_until": "2026-12-31"}).json()
    school = School(api)
    body = problem(school.client.post("/v1/tutor-visits", json={
        "tutor_id": tutor["tutor_id"], "date": "2027-03-01", "hours": 2, "students": 30}), 422)
    assert "tutor_id" in body["errors"]
    body = problem(school.client.post("/v1/tutor-visits", json={
        "tutor_id": tutor["tutor_id"], "date": "2020-03-01", "hours": 20, "students": 0}), 422)
    assert {"hours", "students"} <= set(body["errors"])


def signed_school(school_id):
    """A school actor as the gateway would sign it (RPC called directly, as a retry would)."""
    return sign(Actor(sub=f"t-{school_id}", role="school", org=school_id),
                actor_key(os.environ["KEPU_JWT_SECRET"]))


def test_request_keys_bind_per_kind_and_a_retried_visit_is_the_same(api, rpc, venue):
    s1, s2 = venue.publish(capacity=70), venue.publish(capacity=70)
    school = School(api)
    key = uuid.uuid4().hex
    claim = rpc.booking.create_claim(signed_school(school.id), {
        "session_id": s1["session_id"], "groups": [group("一班")]}, key)
    batch = rpc.booking.create_batch(signed_school(school.id), {
        "groups": [group("二班")], "session_ids": [s2["session_id"]],
        "mode": "best_effort"}, key)
    assert claim["claim_id"].startswith("clm_") and batch["batch_id"].startswith("bat_")
    assert [a["session_id"] for a in batch["assignments"]] == [s2["session_id"]]
    tutor = venue.client.post(f"/v1/venues/{venue.id}/tutors", json={
        "name": "赵老师", "level": "senior", "subjects": ["physics"],
        "certified_until": "2030-12-31"}).json()
    body = {"tutor_id": tutor["tutor_id"], "date": datetime.now(SHANGHAI).date().isoformat(),
            "hours": 2, "students": 40}
    first = rpc.booking.book_tutor_visit(signed_school(school.id), body, key)
    again = rpc.booking.book_tutor_visit(signed_school(school.id), body, key)
    assert first["visit_id"] == again["visit_id"]
    wait_for(lambda: rpc.booking.get_tutor_visit(signed_school(school.id), first["visit_id"])[
        "venue_name"] == venue.venue["name"], timeout=20,
        message="the visit shows its venue from booking's directory")


def test_an_extended_window_allocates_at_its_new_close(stack, api, venue):
    old_close = datetime.now(UTC) + timedelta(seconds=8)
    session = venue.publish(capacity=100, claim_policy="window",
                            window_closes_at=old_close.isoformat().replace("+00:00", "Z"))
    sid = session["session_id"]
    early, late = School(api, name="早到小学"), School(api, name="晚到小学")
    first = early.claim(sid, group("一班")).json()
    assert first["status"] == "pending"
    moved = venue.client.patch(f"/v1/sessions/{sid}",
                               json={"window_closes_at": iso(timedelta(seconds=30))})
    assert moved.status_code == 200, moved.text
    wait_for(lambda: datetime.now(UTC) > old_close + timedelta(seconds=3), timeout=30,
             message="the old window close has passed")
    second = late.claim(sid, group("一班")).json()
    assert second["status"] == "pending"  # the window is still open: no allocation ran

    def settled():
        got = [s.client.get(f"/v1/claims/{c['claim_id']}").json()["status"]
               for s, c in ((early, first), (late, second))]
        return "pending" not in got and got

    assert wait_for(settled, timeout=60, message="allocation at the new close") == [
        "confirmed", "confirmed"]


def test_a_renamed_venue_shows_on_its_tutor_visits(api):
    own = Venue(api, name="上海自然博物馆 visits")
    tutor = own.client.post(f"/v1/venues/{own.id}/tutors", json={
        "name": "钱老师", "level": "junior", "subjects": ["biology"],
        "certified_until": "2030-12-31"}).json()
    school = School(api)
    visit = school.client.post("/v1/tutor-visits", json={
        "tutor_id": tutor["tutor_id"], "date": datetime.now(SHANGHAI).date().isoformat(),
        "hours": 1, "students": 20}).json()
    renamed = own.client.patch(f"/v1/venues/{own.id}", json={"name": "上海自然博物馆(静安)"})
    assert renamed.status_code == 200, renamed.text
    wait_for(lambda: school.client.get(f"/v1/tutor-visits/{visit['visit_id']}").json()[
        "venue_name"] == "上海自然博物馆(静安)", timeout=20,
        message="booking heard venues.venue_updated")
