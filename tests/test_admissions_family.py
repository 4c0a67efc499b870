"""Family and teacher-training bookings through the public API, against a whole stack."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support import problem, wait_for

pytestmark = pytest.mark.stack


def _session(api, venue_id: str, capacity: int, audience: str = "family", **extra) -> dict:
    starts = datetime.now(UTC) + timedelta(days=10)
    body = {"title": "亲子观星夜", "category": "science", "audience": audience,
            "grades": [1, 12], "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(), "capacity": capacity,
            "price_fen": 2000, "prices_fen": {"adult": 3000, "child": 1500}, **extra}
    response = api.as_("venue", venue_id).post(f"/v1/venues/{venue_id}/sessions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def venue(api) -> dict:
    return api.register_venue(name="上海天文馆")


def _verified(api, sinks, phone: str) -> str:
    assert api.anonymous.post("/v1/family/codes", json={"mobile": phone}).status_code == 202
    [sms] = wait_for(lambda: sinks.http.to(phone, "/sms"), message="the code SMS")
    code = re.search(r"[0-9]{6}", sms.body["text"]).group(0)
    answer = api.anonymous.post("/v1/family/verifications", json={"mobile": phone, "code": code})
    assert answer.status_code == 200, answer.text
    return answer.json()["verification"]


def test_a_family_books_confirms_gets_a_ticket_and_is_checked_in_once(api, sinks, venue):
    session = _session(api, venue["venue_id"], 10, max_seats_per_household=4)
    listed = api.anonymous.get("/v1/family/sessions", params={"venue_id": venue["venue_id"]})
    assert session["session_id"] in [s["session_id"] for s in listed.json()["items"]]
    phone = "13900000001"
    verification = _verified(api, sinks, phone)
    made = api.anonymous.post(f"/v1/family/sessions/{session['session_id']}/bookings", json={
        "verification": verification, "adults": 2, "children": 1, "child_names": ["小明"]})
    assert made.status_code == 201, made.text
    assert made.json()["mobile_masked"] == "139****0001" and made.json()["fee_fen"] == 7500
    token = made.json()["manage_token"]
    again = api.anonymous.post(f"/v1/family/sessions/{session['session_id']}/bookings", json={
        "verification": verification, "adults": 1, "children": 0})
    assert problem(again, 409)["code"] == "already-booked"
    confirmed = api.anonymous.post(f"/v1/family/bookings/{token}/confirm").json()
    ticket = confirmed["ticket_code"]
    wait_for(lambda: [m for m in sinks.http.to(phone, "/sms") if ticket in m.body["text"]],
             message="the ticket SMS")
    svg = api.anonymous.get(f"/v1/family/bookings/{token}/ticket.svg")
    assert svg.status_code == 200 and "<svg" in svg.text
    door = api.as_("venue", venue["venue_id"])
    first = door.post(f"/v1/venues/{venue['venue_id']}/check-ins",
                      json={"code": f"KEPU-T:{ticket}", "method": "alipay"})
    assert first.status_code == 200 and first.json()["repeated"] is False, first.text
    second = door.post(f"/v1/venues/{venue['venue_id']}/check-ins", json={"code": ticket})
    assert second.json()["repeated"] is True
    assert second.json()["first_checked_in_at"] == first.json()["checked_in_at"]
    day = first.json()["checked_in_at"]
    local = (datetime.fromisoformat(day.replace("Z", "+00:00")) + timedelta(hours=8)).date()
    csv = door.get(f"/v1/venues/{venue['venue_id']}/takings",
                   params={"day": local.isoformat(), "format": "csv"})
    assert csv.status_code == 200 and "75.00" in csv.text and phone not in csv.text


def test_a_family_burst_never_oversells_and_books_each_household_once(api, sinks, venue):
    session = _session(api, venue["venue_id"], 20)
    phones = [f"1370000{n:04d}" for n in range(30)]
    with ThreadPoolExecutor(8) as pool:
        passes = list(pool.map(lambda p: _verified(api, sinks, p), phones))

    def book(verification: str) -> Any:
        return api.anonymous.post(f"/v1/family/sessions/{session['session_id']}/bookings",
                                  json={"verification": verification, "adults": 1,
                                        "children": 0})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(book, passes + passes))
    states = [a.json().get("status") if a.status_code == 201 else a.status_code
              for a in answers]
    assert states.count("held") == 20 and states.count("waitlisted") == 10
    assert states.count(409) == 30  # one booking per household, the other refused
    seats = api.as_("venue", venue["venue_id"]).get(f"/v1/sessions/{session['session_id']}")
    assert seats.json()["seats_left"] == 0


def test_school_staff_book_training_and_the_venue_sees_the_register(api, venue):
    session = _session(api, venue["venue_id"], 5, audience="teachers")
    school = api.register_school(name="实验小学")
    staff = api.as_("school", school["school_id"])
    claim = staff.post("/v1/claims", json={"session_id": session["session_id"], "seats": 2})
    assert claim.status_code == 422  # not claimable by school claims
    made = staff.post(f"/v1/training/sessions/{session['session_id']}/bookings",
                      json={"attendees": [{"name": "王老师", "subject": "科学"}]})
    assert made.status_code == 201, made.text
    assert made.json()["bookings"][0]["status"] == "confirmed"
    listing = api.as_("venue", venue["venue_id"]).get(
        f"/v1/sessions/{session['session_id']}/register")
    assert [(r["attendee"], r["school_id"]) for r in listing.json()["items"]] == [
        ("王老师", school["school_id"])]


def test_five_wrong_codes_lock_the_number_and_resends_are_limited(api, sinks):
    phone = "13600000099"
    assert api.anonymous.post("/v1/family/codes", json={"mobile": phone}).status_code == 202
    soon = api.anonymous.post("/v1/family/codes", json={"mobile": phone})
    assert problem(soon, 429)["code"] == "code-resend-too-soon" and soon.headers["Retry-After"]
    [sms] = wait_for(lambda: sinks.http.to(phone, "/sms"), message="the code SMS")
    code = re.search(r"[0-9]{6}", sms.body["text"]).group(0)
    bad = f"{(int(code) + 1) % 10**6:06d}"
    answers = [api.anonymous.post("/v1/family/verifications",
                                  json={"mobile": phone, "code": bad}) for _ in range(5)]
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 429]
    right = api.anonymous.post("/v1/family/verifications", json={"mobile": phone, "code": code})
    assert problem(right, 429)["code"] == "mobile-locked"


def test_a_cancellation_promotes_the_waitlist(api, sinks, venue):
    session = _session(api, venue["venue_id"], 2)
    path = f"/v1/family/sessions/{session['session_id']}/bookings"
    first = api.anonymous.post(path, json={
        "verification": _verified(api, sinks, "13500000001"), "adults": 1, "children": 1})
    token = first.json()["manage_token"]
    assert api.anonymous.post(f"/v1/family/bookings/{token}/confirm").status_code == 200
    second = api.anonymous.post(path, json={
        "verification": _verified(api, sinks, "13500000002"), "adults": 2, "children": 0})
    assert second.json()["status"] == "waitlisted" and second.json()["waitlist_position"] == 1
    cancelled = api.anonymous.post(f"/v1/family/bookings/{token}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    promoted = api.anonymous.get(f"/v1/family/bookings/{second.json()['manage_token']}").json()
    assert promoted["status"] == "confirmed" and promoted["ticket_code"]
    wait_for(lambda: [m for m in sinks.http.to("13500000002", "/sms")
                      if promoted["ticket_code"] in m.body["text"]],
             message="the promotion SMS")


def test_no_guardian_number_reaches_the_logs(stack):
    """Runs after the flows above (file order): every phone they used, in any spelling."""
    phones = ["13900000001", "13600000099", "13500000001", "13500000002"]
    found = []
    for path in stack.log_dir.glob("*.log"):
        text = path.read_text(errors="replace")
        found += [(path.name, p) for p in phones if p in text or f"{p[:3]} {p[3:7]}" in text]
    assert not found
