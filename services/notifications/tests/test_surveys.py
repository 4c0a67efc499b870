"""Satisfaction surveys: who is asked, the answer window, one answer per respondent,
masking, languages, and the events monitoring counts."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.notifications import consent, rosters, survey_answers, survey_links
from services.notifications.delivery import Delivery
from services.notifications.settings import NotifySettings
from services.notifications.surveys import Surveys
from services.notifications.tests.factories import confirmed, guardian, pupils
from services.notifications.triggers import Triggers

SECRET = "unit-secret-for-survey-links-0123456789"
LINK = re.compile(r"http://kepu\.test/v1/surveys/([A-Za-z0-9_.-]+)")
LABEL_A, LABEL_B = "五年级(1)班", "五年级(2)班"
GOOD = {"ratings": {"content": 5, "organisation": 4, "safety": 5}, "comment": None}


class Recorder:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list = []

    def send(self, outgoing):
        self.sent.append(outgoing)
        return f"{self.name}-{len(self.sent)}"

    def close(self):
        pass


@pytest.fixture()
def channels():
    return {name: Recorder(name) for name in ("email", "sms", "wechat")}


@pytest.fixture()
def delivery(repo, channels, frozen):
    settings = NotifySettings.from_env({"KEPU_PUBLIC_URL": "http://kepu.test"})
    return Delivery(repo, channels, settings)


@pytest.fixture()
def surveys(delivery):
    return Surveys(delivery, SECRET, days=14)


@pytest.fixture()
def trip(repo, delivery, frozen):
    """Two classes on a confirmed claim; the second class's first guardian reads English."""
    repo.replace_roster(rosters.build_document("sch_1", LABEL_A, pupils(3)))
    second = pupils(2, start=10)
    second[0]["guardians"] = [guardian("Mrs Li", 10, language="en")]
    repo.replace_roster(rosters.build_document("sch_1", LABEL_B, second))
    Triggers(delivery, SECRET).claim_confirmed(confirmed(labels=(LABEL_A, LABEL_B)), "evt_c")
    frozen.set(datetime(2026, 11, 28, 6, 0, tzinfo=UTC))  # after the trip
    return repo.rosters_of("sch_1")


def attended(rosters_now=None, per_pupil: dict[str, list[int]] | None = None, **extra):
    data = {"claim_id": "clm_1", "school_id": "sch_1", "session_id": "ses_1",
            "venue_id": "ven_1", "district": "浦东新区", "district_id": "dst_1",
            "term": "2026-autumn", "students_booked": 40, "students_attended": 4,
            "teachers_attended": 2, "no_show": False, "form": "count", **extra}
    if per_pupil is not None:
        by_label = {r["label"]: r for r in rosters_now}
        data["form"] = "pupils"
        data["groups"] = [{"label": label, "students_booked": 20,
                           "students_attended": len(index),
                           "pupil_ids": [by_label[label]["pupils"][i]["pupil_id"]
                                         for i in index]}
                          for label, index in per_pupil.items()]
    return data


def survey_mails(channels):
    return [o for o in channels["email"].sent if "/v1/surveys/" in o.text]


def token_of(outgoing) -> str:
    return LINK.search(outgoing.text).group(1)


def staged(collection) -> list[dict]:
    """The events staged in a collection's outboxes, oldest first."""
    found = []
    for doc in collection.find({}):
        found += [env for _, env in sorted((doc.get("outbox") or {}).items())]
    return found


# -- who is asked ------------------------------------------------------------------------
def test_per_pupil_attendance_asks_only_the_guardians_of_pupils_who_came(repo, surveys,
                                                                         channels, trip):
    data = attended(trip, per_pupil={LABEL_A: [0, 2], LABEL_B: [0]})
    assert surveys.visit_attended(data, "evt_a") == {"sent": 3}
    mails = survey_mails(channels)
    assert sorted(m.recipient for m in mails) == ["parent0@example.com",
                                                  "parent10@example.com",
                                                  "parent2@example.com"]
    english = next(m for m in mails if m.recipient == "parent10@example.com")
    assert english.subject.startswith("[Kepu] How was the trip?") and english.language == "en"
    chinese = next(m for m in mails if m.recipient == "parent0@example.com")
    assert chinese.subject.startswith("【科普】请评价学生0参加的活动")
    assert all(word in chinese.text for word in ("星空探秘", "上海天文馆", "北京时间"))
    [opened] = staged(repo.db.surveys)
    assert opened["type"] == "notifications.survey_opened"
    assert opened["data"] == {
        "survey_id": "clm_1", "trip_kind": "session", "claim_id": "clm_1", "visit_id": None,
        "session_id": "ses_1", "venue_id": "ven_1", "school_id": "sch_1",
        "district": "浦东新区", "district_id": "dst_1", "term": "2026-autumn",
        "category": None, "guardians_invited": 3, "teachers_invited": 2,
        "opened_at": "2026-11-28T06:00:00.000000Z",
        "closes_at": "2026-12-12T06:00:00.000000Z", "revision": 1}


def test_a_head_count_asks_the_whole_class_and_a_correction_only_those_not_yet_asked(
        repo, surveys, channels, trip):
    partial = attended(trip, per_pupil={LABEL_A: [0]})
    assert surveys.visit_attended(partial, "evt_a") == {"sent": 1}
    assert surveys.visit_attended(partial, "evt_a_copy") == {}  # the same event again
    assert surveys.visit_attended(attended(), "evt_b") == {"sent": 4}  # head count: all 5
    assert len(survey_mails(channels)) == 5
    revisions = [e["data"]["guardians_invited"] for e in staged(repo.db.surveys)]
    assert revisions == [1, 5]


def test_nobody_is_asked_after_a_no_show(repo, surveys, channels, trip):
    assert surveys.visit_attended(attended(students_attended=0, no_show=True), "evt") == {}
    assert survey_mails(channels) == [] and repo.survey("clm_1") is None


def test_links_wait_out_quiet_hours_on_sms(repo, surveys, channels, trip, frozen):
    repo.replace_roster(rosters.build_document("sch_1", LABEL_A, pupils(2, channel="sms")))
    frozen.set(datetime(2026, 11, 28, 14, 0, tzinfo=UTC))  # 22:00 in Shanghai
    assert surveys.visit_attended(attended(trip, per_pupil={LABEL_A: [0]}), "e") == {
        "deferred": 1}
    assert channels["sms"].sent == []


def test_a_tutor_visit_survey_goes_to_the_teachers_only(repo, surveys, channels, frozen):
    visit = {"visit_id": "tv_1", "tutor_id": "tut_1", "tutor_name": "李老师",
             "tutor_level": "senior", "venue_id": "ven_1", "school_id": "sch_1",
             "district": "浦东新区", "date": "2026-11-27", "term": "2026-autumn",
             "hours": 2.0, "students": 40, "subject": "天文"}
    assert surveys.tutor_visit_confirmed(visit, "evt_v") == {}
    assert channels["email"].sent == []
    teacher = Actor("t-1", "school", "sch_1")
    listed = survey_answers.staff_list(repo, teacher, {})["items"]
    assert [s["survey_id"] for s in listed] == ["tv_1"]
    assert listed[0]["trip"]["title"] == "科学辅导员进校：天文（李老师）"
    assert listed[0]["trip"]["when"] == "2026年11月27日（星期五）"
    [opened] = staged(repo.db.surveys)
    assert opened["data"]["trip_kind"] == "tutor_visit"
    assert opened["data"]["guardians_invited"] == 0
    assert opened["data"]["teachers_invited"] == 1


# -- answering ---------------------------------------------------------------------------
@pytest.fixture()
def link(surveys, channels, trip):
    surveys.visit_attended(attended(trip, per_pupil={LABEL_A: [0], LABEL_B: [0]}), "evt_a")
    mails = {m.recipient: m for m in survey_mails(channels)}
    return {"zh": token_of(mails["parent0@example.com"]),
            "en": token_of(mails["parent10@example.com"])}


def test_one_answer_per_guardian_changeable_for_seven_days(repo, link, frozen):
    page = survey_answers.guardian_page(repo, SECRET, link["zh"])
    assert page["answer"] is None and page["open"] and page["pupil"] == "学*0"
    assert [q["key"] for q in page["questions"]] == ["content", "organisation", "safety"]
    first = survey_answers.guardian_answer(repo, SECRET, link["zh"], GOOD)
    assert first["recorded"] and first["answer"]["revision"] == 1
    assert survey_answers.guardian_answer(repo, SECRET, link["zh"], GOOD)["recorded"] is False
    frozen.advance(days=6, hours=23)
    worse = {"ratings": {"content": 2, "organisation": 4, "safety": 5}, "comment": "太挤了"}
    changed = survey_answers.guardian_answer(repo, SECRET, link["zh"], worse)
    assert changed["recorded"] and changed["answer"]["revision"] == 2
    assert changed["answer"]["first_answered_at"] == first["answer"]["answered_at"]
    frozen.advance(hours=1)
    with pytest.raises(Conflict) as locked:
        survey_answers.guardian_answer(repo, SECRET, link["zh"], GOOD)
    assert locked.value.code == "survey-answer-locked"
    guardian_id = survey_links.verify(SECRET, link["zh"])["guardian_id"]
    assert repo.survey_answer(f"clm_1|guardian|{guardian_id}")["ratings"]["content"] == 2
    events = staged(repo.db.survey_answers)
    assert [e["type"] for e in events] == ["notifications.survey_answered",
                                           "notifications.survey_changed"]
    answered, change = events[0]["data"], events[1]["data"]
    assert answered["ratings"] == GOOD["ratings"] and answered["respondent_kind"] == "guardian"
    assert answered["respondent_id"].startswith("rsp_") and answered["commented"] is False
    assert change["previous"] == GOOD["ratings"] and change["revision"] == 2
    assert change["respondent_id"] == answered["respondent_id"] and change["commented"]
    assert "comment" not in change and "太挤" not in str(events)


def test_no_first_answer_after_the_survey_closes(repo, link, frozen):
    frozen.advance(days=14)
    with pytest.raises(Conflict) as closed:
        survey_answers.guardian_answer(repo, SECRET, link["en"], GOOD)
    assert closed.value.code == "survey-closed"
    assert survey_answers.guardian_page(repo, SECRET, link["en"])["open"] is False


def test_contacts_are_masked_out_of_comments_before_storing(repo, link):
    comment = ("讲解很好！有事请联系 138 1234 5678、０２１-６５４３２１００ 或 "
               "li.ming@example.com，微信号：liming_88")
    answer = survey_answers.guardian_answer(repo, SECRET, link["zh"],
                                            {**GOOD, "comment": comment})["answer"]
    stored = repo.db.survey_answers.find_one({})
    for kept in (answer["comment"], stored["comment"]):
        assert kept.startswith("讲解很好！有事请联系 ***")
        for secret in ("1234", "5678", "6543", "li.ming", "example.com", "liming_88"):
            assert secret not in kept


def test_the_page_speaks_the_guardians_language_unless_asked(repo, link):
    english = survey_answers.guardian_page(repo, SECRET, link["en"])
    assert english["language"] == "en" and english["questions"][0]["text"].startswith("Was")
    assert english["trip"]["when"].endswith("(Beijing time)")
    chinese = survey_answers.guardian_page(repo, SECRET, link["en"], "zh-CN")
    assert chinese["questions"][0]["text"] == "活动内容是否充实、有收获？"


def test_a_retry_with_the_same_key_records_nothing_more(repo, link):
    first = survey_answers.guardian_answer(repo, SECRET, link["zh"], GOOD, "key-1")
    other = {"ratings": {"content": 1, "organisation": 1, "safety": 1}, "comment": None}
    survey_answers.guardian_answer(repo, SECRET, link["zh"], other)  # then changed, no key
    again = survey_answers.guardian_answer(repo, SECRET, link["zh"], GOOD, "key-1")
    assert again["recorded"] and again["answer"]["revision"] == 2  # the answer as it is now
    assert len(staged(repo.db.survey_answers)) == 2
    assert first["answer"]["revision"] == 1
    with pytest.raises(ValidationFailed):  # the same key with another answer
        survey_answers.guardian_answer(repo, SECRET, link["zh"], other, "key-1")


def test_only_a_valid_unexpired_survey_link_answers(repo, link, frozen):
    grant = survey_links.verify(SECRET, link["zh"])
    forged = survey_links.sign("another-secret", "clm_1", grant["pupil_id"],
                               grant["guardian_id"], "2027-01-01T00:00:00Z")
    consent_token = consent.sign(SECRET, "clm_1", grant["pupil_id"], "2027-01-01T00:00:00Z")
    for token in (forged, consent_token, link["zh"][:-2] + "xx"):
        with pytest.raises(Forbidden) as refused:
            survey_answers.guardian_page(repo, SECRET, token)
        assert refused.value.code == "survey-link-invalid"
    unknown = survey_links.sign(SECRET, "clm_404", "p", "g", "2027-01-01T00:00:00Z")
    with pytest.raises(NotFound):
        survey_answers.guardian_answer(repo, SECRET, unknown, GOOD)
    frozen.advance(days=21)
    with pytest.raises(Forbidden) as expired:
        survey_answers.guardian_page(repo, SECRET, link["zh"])
    assert expired.value.code == "survey-link-expired"


# -- teachers ----------------------------------------------------------------------------
def test_each_teacher_answers_once_and_only_for_their_school(repo, link):
    one, two = Actor("t-1", "school", "sch_1"), Actor("t-2", "school", "sch_1")
    assert [s["survey_id"] for s in survey_answers.staff_list(repo, one, {})["items"]] == [
        "clm_1"]
    page = survey_answers.teacher_answer(repo, SECRET, one, "clm_1", GOOD)
    assert page["respondent"] == "teacher" and page["recorded"]
    assert survey_answers.teacher_answer(repo, SECRET, two, "clm_1", GOOD)["recorded"]
    mine = survey_answers.staff_list(repo, one, {})["items"][0]
    assert mine["answer"]["ratings"] == GOOD["ratings"]
    assert survey_answers.staff_list(repo, two, {"lang": "en"})["items"][0]["language"] == "en"
    kinds = [e["data"]["respondent_kind"] for e in staged(repo.db.survey_answers)]
    assert kinds == ["teacher", "teacher"]
    for outsider in (Actor("t-9", "school", "sch_2"), Actor("adm", "admin", None),
                     Actor("v-1", "venue", "ven_1")):
        with pytest.raises(Forbidden):
            survey_answers.teacher_answer(repo, SECRET, outsider, "clm_1", GOOD)
    assert survey_answers.staff_list(repo, Actor("t-9", "school", "sch_2"), {})["items"] == []
