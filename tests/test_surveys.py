"""Satisfaction surveys through the real stack: attendance → a survey link in a guardian's
mailbox → an answer through the public route → `notifications.survey_answered`; a teacher
answers through the staff route; a consent answer is announced too."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest

from services.gateway.throttle import group_of
from tests.booking_helpers import iso
from tests.notifications_helpers import (
    CONSENT_URL,
    SURVEY_URL,
    Events,
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
RATINGS = {"content": 5, "organisation": 4, "safety": 5}


@pytest.fixture(scope="module")
def events(stack, settings_env):
    tap = Events(settings_env["AMQP_URL"], producers=("notifications",))
    yield tap
    tap.close()


@pytest.fixture(scope="module")
def trip(api, sinks):
    """A session that has started, a class of three on it, its consent mails delivered."""
    t = tag()
    venue = Venue(api, name="自然博物馆 survey")
    # starts soon, but not before the claim below lands on a loaded machine (it needs a
    # session not yet started; attendance below waits for the start)
    session = venue.publish(starts_at=iso(timedelta(seconds=12)),
                            ends_at=iso(timedelta(hours=2)), title="恐龙的世界")
    school = School(api)
    assert put_roster(school.client, school.id, LABEL,
                      json_roster(t, 3, two_guardians=1)).status_code == 200
    # the claim spells the class with full-width brackets: still the same class
    made = claim(school, session["session_id"], group("四年级（3）班", students=3))
    wait_for(lambda: len(sinks.smtp.matching(lambda m: t in m.rcpt_tos[0])) == 4,
             message="the four confirmations")
    return {"tag": t, "venue": venue, "school": school, "session": session, "claim": made}


def pupil_ids(school: School) -> list[str]:
    roster = school.client.get(f"/v1/schools/{school.id}/rosters/{quote(LABEL)}")
    assert roster.status_code == 200, roster.text
    return [p["pupil_id"] for p in roster.json()["pupils"]]


def test_attendance_sends_survey_links_and_a_guardian_answers(trip, sinks, events):
    school, venue, made = trip["school"], trip["venue"], trip["claim"]
    ids = pupil_ids(school)
    url = f"/v1/sessions/{trip['session']['session_id']}/attendance"
    body = {"records": [{"claim_id": made["claim_id"], "teachers": 1,
                         "groups": [{"label": "四年级（3）班", "pupil_ids": ids[:1]}]}]}

    def recorded():
        response = venue.client.post(url, json=body)
        return response if response.status_code != 409 else None  # not started yet

    assert wait_for(recorded, timeout=40).status_code == 200
    # pupil 0 came: both its guardians (one reads English) get a link, nobody else
    surveys = wait_for(lambda: sinks.smtp.matching(
        lambda m: trip["tag"] in m.rcpt_tos[0] and "/v1/surveys/" in m.text)
        if len(sinks.smtp.matching(lambda m: trip["tag"] in m.rcpt_tos[0]
                                   and "/v1/surveys/" in m.text)) == 2 else None,
        timeout=30, message="two survey links")
    assert sorted(m.rcpt_tos[0].split(".")[0] for m in surveys) == ["g0", "g0b"]
    english = next(m for m in surveys if m.rcpt_tos[0].startswith("g0b."))
    assert english.subject.startswith("[Kepu] How was the trip?")
    link = SURVEY_URL.search(next(m for m in surveys if m.rcpt_tos[0].startswith("g0.")).text)
    parent = Client("", None)
    page = parent.get(link.group(1))
    assert page.status_code == 200, page.text
    assert page.json()["trip"]["title"] == "恐龙的世界" and page.json()["answer"] is None
    assert page.json()["language"] == "zh-CN"

    key = {"Idempotency-Key": uuid.uuid4().hex}
    answer = {"ratings": RATINGS, "comment": "很棒！老师电话 139 0000 1111"}
    first = parent.post(link.group(1), json=answer, headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["answer"]["comment"] == "很棒！老师电话 ***"
    again = parent.post(link.group(1), json=answer, headers=key)  # a retry
    assert again.status_code == 201 and again.json()["answer"]["revision"] == 1
    same = parent.post(link.group(1), json=answer)
    assert same.status_code == 200 and same.json()["recorded"] is False
    problem(parent.post(link.group(1), json={"ratings": {**RATINGS, "safety": 6}}), 422)
    answered = events.one("notifications.survey_answered", survey_id=made["claim_id"],
                          respondent_kind="guardian")
    assert answered["data"]["ratings"] == RATINGS and answered["data"]["commented"] is True
    assert answered["data"]["session_id"] == trip["session"]["session_id"]
    # the number, not "139" alone: random ids in the envelope may contain those digits
    assert "0000 1111" not in str(answered) and "00001111" not in str(answered)
    assert "comment" not in answered["data"]
    assert len(events.of("notifications.survey_answered", survey_id=made["claim_id"])) == 1
    opened = events.one("notifications.survey_opened", survey_id=made["claim_id"])
    assert opened["data"]["guardians_invited"] == 2

    tampered = link.group(1)[:-4] + "abcd"
    assert problem(parent.get(tampered), 403)["code"] == "survey-link-invalid"


def test_a_teacher_answers_in_the_console(trip, api, events):
    school, made = trip["school"], trip["claim"]
    listed = wait_for(lambda: school.client.get("/v1/surveys").json()["items"],
                      message="the school's open survey")
    assert [s["survey_id"] for s in listed] == [made["claim_id"]]
    teacher = api.as_("school", school.id, sub=f"teacher-{uuid.uuid4().hex[:6]}")
    path = f"/v1/surveys/teacher/{made['claim_id']}"
    assert teacher.get(path).json()["answer"] is None
    first = teacher.post(path, json={"ratings": RATINGS})
    assert first.status_code == 201, first.text
    changed = teacher.post(path, json={"ratings": {**RATINGS, "content": 3}},
                           headers={"Idempotency-Key": uuid.uuid4().hex})
    assert changed.status_code == 201 and changed.json()["answer"]["revision"] == 2
    assert teacher.get("/v1/surveys", params={"lang": "en"}).json()["items"][0]["answer"][
        "ratings"]["content"] == 3
    change = events.one("notifications.survey_changed", survey_id=made["claim_id"],
                        respondent_kind="teacher")
    assert change["data"]["previous"] == RATINGS and change["data"]["ratings"]["content"] == 3
    problem(School(api).client.post(path, json={"ratings": RATINGS}), 403)
    problem(api.as_("venue", trip["venue"].id).get("/v1/surveys"), 403)
    problem(teacher.post("/v1/surveys/teacher/clm_nope", json={"ratings": RATINGS}), 404)


def test_a_consent_answer_is_announced(api, sinks, events):
    t = tag()
    venue = Venue(api, name="植物园 consent event")
    session = venue.publish(capacity=30)
    school = School(api)
    assert put_roster(school.client, school.id, LABEL, json_roster(t, 1)).status_code == 200
    made = claim(school, session["session_id"], group(LABEL, students=1))
    mail = wait_for(lambda: sinks.smtp.matching(lambda m: t in m.rcpt_tos[0]),
                    message="the confirmation")[0]
    response = Client("", None).post(CONSENT_URL.search(mail.text).group(1),
                                     json={"answer": "yes"})
    assert response.status_code == 201, response.text
    said = events.one("notifications.consent_answered", claim_id=made["claim_id"])
    assert said["data"]["answer"] == "yes" and said["data"]["seq"] == 1
    assert said["data"]["session_id"] == session["session_id"]


def test_survey_links_count_against_the_public_rate_limit():
    assert group_of("/v1/surveys/abc.def.ghi") == group_of("/v1/consents/abc") == "consent"
    assert group_of("/v1/surveys/teacher/clm_1") == group_of("/v1/surveys") == "default"
