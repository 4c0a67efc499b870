"""The demo district `make run` loads: a new user's first request shows something, and
loading it again duplicates nothing — with its Idempotency-Keys still stored, and after they
have expired (a new key prefix stands in for a run weeks later)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from deploy.demo import CLAIMS, CLASSES, Demo, sessions

pytestmark = pytest.mark.stack


def snapshot(demo: Demo) -> dict[str, Any]:
    """Everything the demo made, counted through the API."""
    counts: dict[str, Any] = {
        "venues": sorted(v["venue_id"] for v in demo.venues.values()),
        "schools": sorted(s["school_id"] for s in demo.schools.values()),
        "sessions": {k: len(demo._venue_sessions(v)) for k, v in
                     {d["venue"]: d["venue"] for d in sessions(demo.today)}.items()},
    }
    for school, label, *_ in CLASSES:
        client = demo.school_caller(school)
        school_id = demo.schools[school]["school_id"]
        roster = client.call("GET", f"/v1/schools/{school_id}/rosters/{label}")
        counts[f"roster {label}"] = (roster["pupil_count"], roster["guardian_count"])
        counts[f"claims {school}"] = len(client.call("GET", "/v1/claims")["items"])
    museum = demo.venues["museum"]["venue_id"]
    staff = demo.venue_caller("museum")
    counts["tutors"] = len(staff.call("GET", f"/v1/venues/{museum}/tutors")["items"])
    counts["visits"] = len(demo.school_caller("shuyuan").call("GET", "/v1/tutor-visits")["items"])
    counts["rate cards"] = len(demo.finance.call("GET", "/v1/funding/rate-cards")["items"])
    term_budgets = demo.finance.call("GET", "/v1/funding/budgets",
                                     params={"term": demo.term})["items"]
    counts["funded"] = {b["source"]: b["funded_fen"] for b in term_budgets}
    return counts


def test_the_demo_fills_the_catalogue_and_loads_twice_without_duplicates(stack, api,
                                                                         tmp_path):
    secret = os.environ["KEPU_JWT_SECRET"]  # the test stack's, set by conftest.py
    state = tmp_path / "demo.json"
    first = Demo(stack.url, secret, state=state).load()
    before = snapshot(first)

    # The first request the welcome line suggests: the catalogue, as the demo school.
    catalogue = first.school_caller("shuyuan").call(
        "GET", "/v1/sessions", params={"district_id": first.district_id, "limit": 100})
    titles = {s["title"] for s in catalogue["items"]}
    assert catalogue["items"] and titles & {d["title"] for d in sessions(first.today)}
    assert before["sessions"]["museum"] >= 5  # the weekly series
    assert all(count > 0 for count in before["sessions"].values())
    assert before["tutors"] == before["visits"] == before["rate cards"] == 1
    assert before["funded"]["fiscal_subsidy"] > 0
    assert all(before[f"claims {school}"] >= 1 for school, *_ in CLAIMS)

    again = Demo(stack.url, secret, state=state).load()  # the same request keys
    assert snapshot(again) == before
    later = Demo(stack.url, secret, state=state, keys="demo-later").load()  # keys expired
    assert snapshot(later) == before
