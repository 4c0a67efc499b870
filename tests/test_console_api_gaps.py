"""The API gaps the console needed, over HTTP on the whole stack: a consent reminder, the
venue's consent counts, a window allocation's explanation, organisation names in /v1/me,
colleagues' names, and the venue list."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from tests.booking_helpers import iso
from tests.notifications_helpers import (
    CONSENT_URL,
    School,
    Venue,
    claim,
    group,
    json_roster,
    put_roster,
    tag,
)
from tests.support import Client, problem, wait_for

pytestmark = pytest.mark.stack

LABEL = "四年级(3)班"


def mails_to(sinks, t: str, count: int, subject: str = "") -> list:
    def arrived():
        found = sinks.smtp.matching(lambda m: t in m.rcpt_tos[0] and subject in m.subject)
        return found if len(found) >= count else None
    return wait_for(arrived, timeout=30, message=f"{count} mail(s) for {t} {subject!r}")


def test_a_school_reminds_the_parents_who_have_not_answered_once_per_12_hours(api, sinks):
    t = tag()
    venue = Venue(api, name="天文馆 reminders")
    session = venue.publish(capacity=40, title="星空 reminders")
    school, other = School(api), School(api)
    assert put_roster(school.client, school.id, LABEL, json_roster(t, 2)).status_code == 200
    made = claim(school, session["session_id"], group(LABEL, students=2))
    first = sorted(mails_to(sinks, t, 2), key=lambda m: m.rcpt_tos[0])[0]
    link = CONSENT_URL.search(first.text).group(1)
    assert Client("", None).post(link, json={"answer": "yes"}).status_code == 201

    path = f"/v1/claims/{made['claim_id']}/consents/remind"
    key = {"Idempotency-Key": f"remind-{t}"}
    sent = school.client.post(path, headers=key)
    assert sent.status_code == 201, sent.text
    body = sent.json()
    assert (body["pupils"], body["messages"], body["deferred"]) == (1, 1, 0)
    reminder = mails_to(sinks, t, 1, subject="请回复")
    assert reminder[0].rcpt_tos[0] != first.rcpt_tos[0]  # the parent who answered is spared
    again = school.client.post(path, headers=key)
    assert again.status_code == 201 and again.json()["reminder_id"] == body["reminder_id"]
    soon = problem(school.client.post(path, headers={"Idempotency-Key": f"other-{t}"}), 429)
    assert soon["code"] == "consent-reminder-too-soon"
    problem(other.client.post(path), 403)
    assert len(sinks.smtp.matching(lambda m: t in m.rcpt_tos[0] and "请回复" in m.subject)) == 1

    counts = api.as_("venue", venue.id).get("/v1/consent-summaries",
                                            params={"claim_ids": made["claim_id"]})
    assert counts.status_code == 200, counts.text
    assert counts.json()["items"] == [{"claim_id": made["claim_id"], "claim_status": "confirmed",
                                       "summary": {"pupils": 2, "yes": 1, "no": 0,
                                                   "pending": 1}}]
    assert t not in counts.text  # no contact, no name
    elsewhere = Venue(api, name="别的馆")
    assert elsewhere.client.get("/v1/consent-summaries", params={
        "claim_ids": made["claim_id"]}).json()["items"] == []


def test_a_window_allocation_is_explained_to_each_school_for_its_own_claims(api):
    venue = Venue(api, name="科技馆 window explained")
    session = venue.publish(capacity=40, claim_policy="window",
                            window_closes_at=iso(timedelta(seconds=5)))
    sid = session["session_id"]
    city, rural, stranger = School(api), School(api, rural=True), School(api)
    claims = [s.claim(sid, group("一班")).json() for s in (city, rural)]
    path = f"/v1/sessions/{sid}/allocation"
    early = city.client.get(path)
    assert early.status_code == 200 and early.json()["state"] == "open", early.text
    assert early.json()["items"] == []

    def drawn():
        view = city.client.get(path).json()
        return view if view.get("seed") else None

    mine = wait_for(drawn, timeout=40, message="the allocation after the window closed")
    assert mine["claims"] == 2 and mine["reproduced"] is True
    assert [(i["claim_id"], i["rank"], i["outcome"]) for i in mine["items"]] == [
        (claims[0]["claim_id"], 2, "waitlisted")]
    assert "ranked 2 of 2" in mine["items"][0]["reason"]
    everyone = venue.client.get(path).json()
    assert [i["school_id"] for i in everyone["items"]] == [rural.id, city.id]
    assert everyone["seed"] == mine["seed"]
    problem(stranger.client.get(path), 404)
    problem(api.minted("finance", "dis_x").get(path), 403)


def test_names_for_the_console_memberships_colleagues_and_venues(api):
    district = api.register_district()
    where = {"district_id": district["district_id"], "district": district["name"]}

    def registered():  # venues learns the new district from identity's event
        r = api.admin.post("/v1/venues", json={
            "name": f"动物园 {uuid.uuid4().hex[:6]}", "kind": "zoo", "address": "虹桥路",
            "location": {"lat": 31.19, "lon": 121.36}, **where})
        return r.json() if r.status_code == 201 else None

    venue = Venue.__new__(Venue)
    venue.id = wait_for(registered, timeout=20, message="venue in the new district")["venue_id"]
    school = School(api, name="实验小学 names")
    teacher = api.person("school", school.id, name="teacher")

    def named():
        me = teacher.get("/v1/me").json()
        return me if me["memberships"][0].get("org_name") else None

    me = wait_for(named, timeout=20, message="identity learned the school's name")
    assert me["memberships"][0]["org_name"] == "实验小学 names"
    assert me["memberships"][0]["org_kind"] == "school"
    assert me["acting"]["org_name"] == "实验小学 names"
    colleague = api.person("school", school.id, name="colleague")
    outsider = api.person("venue", venue.id, name="outsider")
    ids = ",".join([colleague.user_id, outsider.user_id, "usr_nobody"])
    people = teacher.get("/v1/people", params={"ids": ids})
    assert people.status_code == 200, people.text
    assert [p["user_id"] for p in people.json()["items"]] == [colleague.user_id]
    assert set(people.json()["items"][0]) == {"user_id", "display_name"}
    problem(teacher.get("/v1/people"), 422)

    listed = teacher.get("/v1/venues", params={"district_id": district["district_id"],
                                               "kind": "zoo"})
    assert listed.status_code == 200, listed.text
    assert [v["venue_id"] for v in listed.json()["items"]] == [venue.id]
    problem(teacher.get("/v1/venues", params={"kind": "castle"}), 422)
    problem(api.anonymous.get("/v1/venues"), 401)
