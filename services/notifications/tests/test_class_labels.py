"""Class labels match however they are typed (full-width brackets, spaces), and booking
reads the pupil ids of a class; a consent answer announces itself for monitoring."""

from __future__ import annotations

import pytest

from services.contracts.common import class_label_key
from services.kit.errors import ValidationFailed
from services.notifications import consent, rosters
from services.notifications.delivery import Delivery
from services.notifications.settings import NotifySettings
from services.notifications.tests.factories import confirmed, pupils
from services.notifications.triggers import Triggers

SECRET = "unit-secret-for-consent-links-0123456789"


class Recorder:
    name = "email"

    def __init__(self) -> None:
        self.sent: list = []

    def send(self, outgoing):
        self.sent.append(outgoing)
        return "ok"

    def close(self):
        pass


def test_full_width_brackets_spaces_and_case_make_one_key():
    assert class_label_key("五年级（2）班") == class_label_key("五年级(2)班")
    assert class_label_key(" 五年级 (２) 班 ") == class_label_key("五年级(2)班")
    assert class_label_key("Class 5A") == class_label_key("class５ａ")
    assert class_label_key("五年级(2)班") != class_label_key("五年级(3)班")


def test_class_pupils_answers_per_label_as_asked(repo):
    repo.replace_roster(rosters.build_document("sch_1", "五年级(2)班", pupils(3)))
    repo.replace_roster(rosters.build_document("sch_2", "五年级(2)班", pupils(1, start=9)))
    stored = [p["pupil_id"] for p in repo.roster("sch_1|五年级(2)班")["pupils"]]
    answer = rosters.class_pupils(repo, "sch_1", ["五年级（2）班", "六年级(1)班"])
    assert answer == {"五年级（2）班": stored, "六年级(1)班": []}
    for school_id, labels in (("sch_1", "五年级(2)班"), ("", ["x"]), ("sch_1", [""]),
                              ("sch_1", ["x"] * 61), (None, []), ("sch_1", [1])):
        with pytest.raises(ValidationFailed):
            rosters.class_pupils(repo, school_id, labels)


def test_a_roster_uploaded_under_another_spelling_replaces_the_same_class(repo):
    repo.replace_roster(rosters.build_document("sch_1", "五年级(2)班", pupils(3)))
    assert repo.roster_label("sch_1", "五年级（2）班") == "五年级(2)班"
    assert repo.roster_label("sch_1", "六年级（1）班") == "六年级（1）班"


def test_a_claim_spelled_differently_still_reaches_the_class(repo):
    repo.replace_roster(rosters.build_document("sch_1", "五年级(2)班", pupils(2)))
    channel = Recorder()
    settings = NotifySettings.from_env({"KEPU_PUBLIC_URL": "http://kepu.test"})
    triggers = Triggers(Delivery(repo, {"email": channel}, settings), SECRET)
    assert triggers.claim_confirmed(confirmed(labels=("五年级（2）班",)), "evt") == {"sent": 2}


def test_a_consent_answer_is_stored_with_its_event(repo, frozen):
    repo.replace_roster(rosters.build_document("sch_1", "五年级(1)班", pupils(1)))
    settings = NotifySettings.from_env({"KEPU_PUBLIC_URL": "http://kepu.test"})
    Triggers(Delivery(repo, {"email": Recorder()}, settings), SECRET).claim_confirmed(
        confirmed(), "evt")
    pupil_id = repo.roster("sch_1|五年级(1)班")["pupils"][0]["pupil_id"]
    token = consent.sign(SECRET, "clm_1", pupil_id, "2026-11-28T01:30:00Z")
    consent.answer(repo, SECRET, token, {"answer": "yes"})
    consent.answer(repo, SECRET, token, {"answer": "no"})
    events = sorted((env for doc in repo.db.consents.find({})
                     for env in (doc.get("outbox") or {}).values()),
                    key=lambda e: e["data"]["seq"])
    assert [e["type"] for e in events] == ["notifications.consent_answered"] * 2
    assert events[1]["data"] == {
        "claim_id": "clm_1", "school_id": "sch_1", "session_id": "ses_1",
        "venue_id": "ven_1", "pupil_id": pupil_id, "label": "五年级(1)班", "answer": "no",
        "seq": 2, "answered_at": "2026-11-23T02:00:00.000000Z"}
