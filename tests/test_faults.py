"""Fault drills (issue 7): a process dies or the broker drops everyone mid-burst.

Each drill asserts that nothing is lost and nothing is doubled: every accepted claim ends
with a final status that matches the seats the venues service holds, and every guardian
gets each message once. Clients behave as real ones should: a request that failed with a
503 or a dropped connection is sent again with the same Idempotency-Key.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymongo
import pytest
import requests

from services.kit import outbox
from tests.booking_helpers import School, Venue, group
from tests.notifications_helpers import Events, json_roster, put_roster, tag
from tests.support import wait_for
from tests.test_foundation_events import kepu

pytestmark = [pytest.mark.stack, pytest.mark.faults]

FINAL = ("confirmed", "waitlisted", "rejected")


def send_until_answered(school: School, body: dict[str, Any], deadline_s: float = 120) -> dict:
    """POST a claim, retrying with the same key until the platform gives a final answer."""
    key = uuid.uuid4().hex
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            response = school.client.post("/v1/claims", json=body, timeout=60,
                                          headers={"Idempotency-Key": key})
            if response.status_code == 201:
                return response.json()
            assert response.status_code in (409, 502, 503, 504), response.text
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "no final answer for a claim"
        time.sleep(0.2)


def burst(schools: list[School], session_ids: list[str], count: int,
          during: Any = None) -> list[dict[str, Any]]:
    bodies = [{"session_id": session_ids[i % len(session_ids)],
               "groups": [group("五年级(1)班", students=20 + i % 15, teachers=2)]}
              for i in range(count)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(send_until_answered, schools[i % len(schools)], body)
                   for i, body in enumerate(bodies)]
        if during is not None:
            wait_for(lambda: sum(f.done() for f in futures) >= count // 4, timeout=120)
            during()
        return [f.result() for f in futures]


def assert_consistent(rpc: Any, mongo_url: str, session_ids: list[str],
                      answers: list[dict[str, Any]]) -> None:
    """No claim left mid-way, stored status = the answer given, holds = confirmed seats."""
    client = pymongo.MongoClient(mongo_url, tz_aware=True)
    claims = client.kepu_booking.claims
    try:
        wait_for(lambda: claims.count_documents({"session_id": {"$in": session_ids},
                                                 "status": "holding"}) == 0, timeout=60,
                 message="the sweep finishes claims a crash left holding")
        for answer in answers:
            assert answer["status"] in FINAL
            stored = claims.find_one({"_id": answer["claim_id"]})
            assert stored["status"] == answer["status"], (answer, stored["status"])
        for sid in session_ids:
            seats = rpc.venues.seats(sid)
            confirmed = {c["_id"]: c["seats"] for c in claims.find(
                {"session_id": sid, "status": "confirmed"})}
            assert seats["holds"] == confirmed
            assert sum(confirmed.values()) <= seats["capacity"]
            assert seats["seats_left"] == seats["capacity"] - sum(confirmed.values())
    finally:
        client.close()


@pytest.fixture(scope="module")
def venue(stack, api):
    return Venue(api, name="fault drill museum")


def test_booking_killed_during_a_burst(stack, api, rpc, venue):
    sessions = [venue.publish(capacity=150)["session_id"] for _ in range(2)]
    schools = [School(api) for _ in range(10)]

    def crash():
        stack.kill("booking")
        stack.start("booking")

    answers = burst(schools, sessions, 60, during=crash)
    assert len({a["claim_id"] for a in answers}) == 60
    assert_consistent(rpc, stack.env["MONGO_URL"], sessions, answers)


def test_relay_killed_during_a_burst_delivers_every_message_once(stack, api, venue, sinks):
    session = venue.publish(capacity=2000)["session_id"]
    tag_ = tag()
    schools = [School(api) for _ in range(8)]
    for i, school in enumerate(schools):
        roster = json_roster(f"{tag_}s{i}", pupils=3)
        assert put_roster(school.client, school.id, "五年级(1)班", roster).status_code == 200

    def crash():
        stack.kill("relay")
        stack.start("relay")

    answers = burst(schools, [session], 40, during=crash)
    confirmed = [a for a in answers if a["status"] == "confirmed"]
    assert len(confirmed) == 40
    expected = len(confirmed) * 3  # each school's claims reach its three guardians
    mine = lambda m: tag_ in m.rcpt_tos[0]  # noqa: E731
    wait_for(lambda: len(sinks.smtp.matching(mine)) >= expected, timeout=90,
             message=f"{expected} e-mails")
    mails = sinks.smtp.matching(mine)
    per_message = Counter((m.rcpt_tos[0], m.message["X-Kepu-Message-Id"]) for m in mails)
    assert len(mails) == expected and max(per_message.values()) == 1


def test_broker_drops_every_connection_mid_burst(stack, api, rpc, venue, settings_env):
    sessions = [venue.publish(capacity=150)["session_id"] for _ in range(2)]
    schools = [School(api) for _ in range(10)]
    vhost = settings_env["AMQP_URL"].rsplit("/", 1)[1]

    def drop():
        result = subprocess.run(["rabbitmqctl", "-q", "close_all_connections", "-p", vhost,
                                 "fault drill"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr

    answers = burst(schools, sessions, 60, during=drop)
    assert_consistent(rpc, stack.env["MONGO_URL"], sessions, answers)
    stack.wait_healthy(timeout=60)  # everyone reconnected by themselves
    after = send_until_answered(schools[0], {"session_id": sessions[0],
                                             "groups": [group("二班", students=5)]})
    assert after["status"] in FINAL


def test_a_poison_event_is_parked_and_the_queue_keeps_flowing(stack, api, settings_env):
    """A valid envelope whose data the probe's handler cannot process."""
    events = Events(settings_env["AMQP_URL"])
    client = pymongo.MongoClient(stack.env["MONGO_URL"], tz_aware=True)
    try:
        poison = outbox.event("venues.venue_registered", {
            "venue_id": f"ven_poison_{uuid.uuid4().hex[:6]}", "name": "POISON 馆",
            "kind": "zoo", "district": "浦东新区", "location": {"lat": 31.0, "lon": 121.0},
            "address": "x", "timezone": "Asia/Shanghai"})
        events.publish(poison)
        behind = [Venue(api, name=f"behind the poison {i}").id for i in range(5)]
        counts = client.kepu_probe.venue_counts
        wait_for(lambda: counts.count_documents({"_id": {"$in": behind}}) == 5, timeout=30,
                 message="the events behind the poison are applied")
        assert counts.find_one({"_id": poison["data"]["venue_id"]}) is None

        def parked():
            listing = kepu(settings_env, "dlq", "list", "--json")
            return [p for p in json.loads(listing.stdout) if p["event_id"] == poison["event_id"]]

        item = wait_for(parked, timeout=30, message="the poison in the dead-letter queue")[0]
        assert item["attempts"] == 4 and "cannot process" in item["error"]
        assert item["queue"] == "evt-venues-venue_registered--probe.on_venue"
    finally:
        events.close()
        client.close()
