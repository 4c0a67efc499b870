"""Scale-out (issue 8): two replicas each of booking and venues, one burst of claims.

Replicas are competing consumers of their service's RPC queue. The burst must be served by
both replicas of each service, with no seat oversold and no claim made twice.
"""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pymongo
import pytest

from tests.booking_helpers import School, Venue, group
from tests.support import wait_for

pytestmark = pytest.mark.stack


def test_two_replicas_of_booking_and_venues_share_a_burst(stack, api, rpc):
    venue = Venue(api, name="scale-out museum")
    sessions = [venue.publish(capacity=200)["session_id"] for _ in range(3)]
    schools = [School(api) for _ in range(12)]
    stack.start("booking", instance="booking-2")
    stack.start("venues", instance="venues-2")
    try:
        for service in ("booking", "venues"):
            seen: set[str] = set()
            wait_for(lambda s=service, seen=seen: seen.add(rpc.call(s, "ping")["instance"])
                     or len(seen) == 2, timeout=60, interval=0.1,
                     message=f"two {service} replicas answer")

        def claim(i: int) -> dict:
            school = schools[i % len(schools)]
            response = school.client.post("/v1/claims", headers={
                "Idempotency-Key": uuid.uuid4().hex}, json={
                "session_id": sessions[i % len(sessions)],
                "groups": [group(f"{i}班", students=10 + i % 20, teachers=2)]})
            assert response.status_code == 201, response.text
            return response.json()

        with ThreadPoolExecutor(max_workers=24) as pool:
            answers = list(pool.map(claim, range(150)))
    finally:
        stack.stop("booking-2")
        stack.stop("venues-2")
    assert len({a["claim_id"] for a in answers}) == 150  # no claim made twice
    client = pymongo.MongoClient(stack.env["MONGO_URL"], tz_aware=True)
    try:
        claims = {c["_id"]: c for c in client.kepu_booking.claims.find(
            {"_id": {"$in": [a["claim_id"] for a in answers]}})}
        booking_replicas = Counter(c["served_by"] for c in claims.values())
        venue_replicas: Counter[str] = Counter()
        for sid in sessions:
            doc = client.kepu_venues.sessions.find_one({"_id": sid})
            venue_replicas.update(h["by"] for h in doc["holds"].values())
            seats = rpc.venues.seats(sid)
            confirmed = {cid: c["seats"] for cid, c in claims.items()
                         if c["session_id"] == sid and c["status"] == "confirmed"}
            assert seats["holds"] == confirmed
            assert sum(confirmed.values()) <= seats["capacity"]
    finally:
        client.close()
    assert len(booking_replicas) == 2, booking_replicas
    assert len(venue_replicas) == 2, venue_replicas
    for answer in answers:
        assert claims[answer["claim_id"]]["status"] == answer["status"]
