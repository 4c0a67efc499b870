"""Rosters and consent over HTTP: whole-or-nothing uploads, signed links, school-only reads."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest

from services.notifications import consent
from tests.booking_helpers import iso
from tests.notifications_helpers import (
    CONSENT_URL,
    School,
    Venue,
    claim,
    csv_roster,
    group,
    json_roster,
    put_roster,
    roster_path,
    tag,
)
from tests.support import Client, problem, wait_for

pytestmark = pytest.mark.stack

LABEL = "五年级(2)班"


def test_csv_with_a_bad_phone_in_row_7_changes_nothing(api):
    school = School(api)
    t = tag()
    first = put_roster(school.client, school.id, LABEL, csv_roster(t, 10))
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1 and first.json()["pupil_count"] == 10
    rows = csv_roster(t, 12, start=50).splitlines()
    rows[7] = rows[7].replace("13900000056", "1390000005")  # row 7 = 7th line after the header
    body = problem(put_roster(school.client, school.id, LABEL, "\n".join(rows)), 422)
    assert list(body["errors"]) == ["rows.7.手机"]
    assert "row 7" in body["detail"]
    stored = school.client.get(roster_path(school.id, LABEL))
    assert stored.status_code == 200
    kept = stored.json()
    assert kept["version"] == 1 and kept["pupil_count"] == 10
    assert [p["name"] for p in kept["pupils"]][:2] == ["学生0", "学生1"]
    guardian = kept["pupils"][0]["guardians"][0]
    assert guardian["phone"] == "139****0000" and guardian["email"] == "g***@example.com"
    assert t not in stored.text  # no unmasked e-mail address anywhere in the listing


def test_json_roster_replaces_the_class_and_lists_masked(api):
    school = School(api)
    t = tag()
    assert put_roster(school.client, school.id, LABEL, json_roster(t, 3)).status_code == 200
    second = put_roster(school.client, school.id, LABEL, json_roster(t, 2, start=10))
    assert second.status_code == 200 and second.json()["version"] == 2
    assert [p["name"] for p in second.json()["pupils"]] == ["学生10", "学生11"]
    listing = school.client.get(f"/v1/schools/{school.id}/rosters").json()["items"]
    assert [(r["label"], r["pupil_count"]) for r in listing] == [(LABEL, 2)]
    bad = problem(put_roster(school.client, school.id, LABEL, {"pupils": [
        {"name": "李雷", "guardians": [{"name": "李爸爸", "phone": "123"}]}]}), 422)
    assert "pupils.0.guardians.0.phone" in bad["errors"]
    wrong_type = school.client.put(roster_path(school.id, LABEL), data=b"x",
                                   headers={"Content-Type": "text/plain"})
    problem(wrong_type, 415)
    problem(school.client.get(roster_path(school.id, "没有这个班")), 404)


def test_consent_link_shows_the_trip_and_records_answers(api, sinks, stack):
    t = tag()
    venue = Venue(api, name="植物园 consent")
    session = venue.publish(capacity=40, title="植物的秘密")
    school = School(api)
    assert put_roster(school.client, school.id, LABEL, json_roster(t, 2)).status_code == 200
    made = claim(school, session["session_id"], group(LABEL, students=2))
    mails = wait_for(lambda: sinks.smtp.matching(lambda m: t in m.rcpt_tos[0])
                     if len(sinks.smtp.matching(lambda m: t in m.rcpt_tos[0])) == 2 else None)
    link = CONSENT_URL.search(sorted(mails, key=lambda m: m.rcpt_tos[0])[0].text).group(1)
    assert link.startswith(stack.url)
    parent = Client("", None)

    page = parent.get(link)
    assert page.status_code == 200, page.text
    assert page.json()["trip"]["title"] == "植物的秘密" and page.json()["answer"] is None
    assert page.json()["pupil"] == "学*0"
    assert parent.get(link, params={"lang": "en"}).json()["trip"]["local_time"].endswith(
        "(Beijing time)")
    yes = parent.post(link, json={"answer": "yes", "guardian_name": "家长0"})
    assert yes.status_code == 201 and yes.json()["recorded"] is True
    again = parent.post(link, json={"answer": "yes"})
    assert again.status_code == 200 and again.json()["recorded"] is False
    problem(parent.post(link, json={"answer": "maybe"}), 422)

    consents = school.client.get(f"/v1/claims/{made['claim_id']}/consents")
    assert consents.status_code == 200, consents.text
    body = consents.json()
    assert body["summary"] == {"pupils": 2, "yes": 1, "no": 0, "pending": 1}
    answered = next(i for i in body["items"] if i["answer"])
    assert answered["answered_by"] == "家长0" and answered["changes"] == 0
    assert answered["guardians"][0]["contact"] == "g***@example.com"
    assert parent.post(link, json={"answer": "no"}).status_code == 201
    body = school.client.get(f"/v1/claims/{made['claim_id']}/consents").json()
    assert body["summary"] == {"pupils": 2, "yes": 0, "no": 1, "pending": 1}
    assert next(i for i in body["items"] if i["answer"])["changes"] == 1

    token = link.rsplit("/", 1)[1]
    header, payload, signature = token.split(".")
    tampered = f"{link.rsplit('/', 1)[0]}/{header}.{payload[:-3]}xyz.{signature}"
    refused = problem(parent.get(tampered), 403)
    assert refused["code"] == "consent-link-invalid"
    problem(parent.post(tampered, json={"answer": "yes"}), 403)
    pupil_id = consent.verify(os.environ["KEPU_JWT_SECRET"], token)["pupil_id"]
    expired = consent.sign(os.environ["KEPU_JWT_SECRET"], made["claim_id"], pupil_id,
                           iso(-timedelta(minutes=1)))
    gone = problem(parent.post(f"{link.rsplit('/', 1)[0]}/{expired}", json={"answer": "yes"}),
                   403)
    assert gone["code"] == "consent-link-expired"
    assert school.client.get(f"/v1/claims/{made['claim_id']}/consents").json()[
        "summary"]["no"] == 1


def test_another_school_cannot_read_the_roster_log_or_consents(api, sinks):
    t = tag()
    venue = Venue(api, name="科技馆 privacy")
    session = venue.publish(capacity=40)
    owner, other = School(api), School(api)
    assert put_roster(owner.client, owner.id, LABEL, json_roster(t, 1)).status_code == 200
    made = claim(owner, session["session_id"], group(LABEL, students=1))
    wait_for(lambda: owner.client.get("/v1/notifications",
                                      params={"claim_id": made["claim_id"]}).json()["items"])
    for client in (other.client, api.as_("venue", venue.id), api.admin):
        problem(client.get(roster_path(owner.id, LABEL)), 403)
        problem(put_roster(client, owner.id, LABEL, json_roster(t, 1)), 403)
        problem(client.get(f"/v1/schools/{owner.id}/rosters"), 403)
        problem(client.get("/v1/notifications", params={"claim_id": made["claim_id"]}), 403)
        problem(client.get(f"/v1/claims/{made['claim_id']}/consents"), 403)
    assert other.client.get("/v1/notifications").json()["items"] == []
    problem(api.anonymous.get(roster_path(owner.id, LABEL)), 401)
    assert re.fullmatch(r"g\*\*\*@example\.com", owner.client.get(
        "/v1/notifications", params={"claim_id": made["claim_id"]}).json()["items"][0][
        "recipient"])
