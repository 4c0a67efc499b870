"""Seat holds through the running venues service: real broker, real nx-27017."""

from __future__ import annotations

import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.venues_helpers import Staff

pytestmark = pytest.mark.stack

CAPACITY, PER_SCHOOL = 400, 45


def test_300_concurrent_holds_never_oversell_and_repeats_change_nothing(api, rpc):
    staff = Staff(api, name="并发测试馆 Concurrency museum")
    session = staff.publish(capacity=CAPACITY, max_seats_per_school=PER_SCHOOL)
    sid = session["session_id"]
    rng = random.Random(2026)
    run = uuid.uuid4().hex[:6]
    asks = [(f"clm_{run}_{i}", f"sch_{run}_{rng.randint(1, 12)}", rng.randint(1, 12))
            for i in range(300)]

    def hold(ask):
        return rpc.venues.hold(sid, *ask)

    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(hold, asks))

    accepted = {claim: seats for (claim, _, seats), a in zip(asks, answers, strict=True)
                if a["ok"]}
    refused = [(seats, a["reason"]) for (_, _, seats), a in zip(asks, answers, strict=True)
               if not a["ok"]]
    seats = rpc.venues.seats(sid)
    assert sum(accepted.values()) <= CAPACITY
    assert seats["holds"] == accepted
    assert seats["held"] == sum(accepted.values())
    assert seats["seats_left"] == CAPACITY - sum(accepted.values())
    assert all(held <= PER_SCHOOL for held in seats["per_school"].values())
    assert {reason for _, reason in refused} <= {"full", "over_school_limit"}
    assert refused, "demand (about 1950 seats) is far above capacity"
    smallest_full = min((n for n, reason in refused if reason == "full"), default=None)
    if smallest_full is not None:  # seats only go down here, so a refusal stays true
        assert seats["seats_left"] < smallest_full
    assert api.admin.get(f"/v1/sessions/{sid}").json()["seats_left"] == seats["seats_left"]

    accepted_asks = [ask for ask in asks if ask[0] in accepted]
    with ThreadPoolExecutor(32) as pool:
        repeats = list(pool.map(hold, accepted_asks))
    assert all(a["ok"] and a["repeated"] for a in repeats)
    assert rpc.venues.seats(sid) == seats


def test_release_gives_seats_back_once(api, rpc):
    staff = Staff(api, name="释放测试馆 Release museum")
    sid = staff.publish(capacity=10)["session_id"]
    assert rpc.venues.hold(sid, "clm_release_1", "sch_release", 10)["seats_left"] == 0
    assert rpc.venues.hold(sid, "clm_release_2", "sch_release", 1)["reason"] == "full"
    assert rpc.venues.release(sid, "clm_release_1") == {"released": 10, "seats_left": 10}
    assert rpc.venues.release(sid, "clm_release_1") == {"released": 0, "seats_left": 10}
    assert rpc.venues.hold("ses_nowhere", "clm_release_3", "sch_release", 1)["reason"] == \
        "not_found"


def test_a_hold_with_an_old_session_version_is_refused_as_stale(api, rpc):
    staff = Staff(api, name="版本测试馆 Version museum")
    session = staff.publish(capacity=10)
    sid, version = session["session_id"], session["version"]
    assert rpc.venues.hold(sid, "clm_version_1", "sch_version", 2, version)["ok"]
    edited = staff.client.patch(f"/v1/sessions/{sid}", json={"title": "新标题"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == version + 1
    stale = rpc.venues.hold(sid, "clm_version_2", "sch_version", 2, version)
    assert (stale["ok"], stale["reason"], stale["seats_left"]) == (False, "stale", 8)
    assert rpc.venues.hold(sid, "clm_version_2", "sch_version", 2, version + 1)["ok"]
    assert rpc.venues.hold(sid, "clm_version_3", "sch_version", 2)["seats_left"] == 4
