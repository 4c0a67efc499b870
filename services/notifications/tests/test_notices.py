from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import jwt
import pytest

from services.kit import auth
from services.kit.actor import Actor
from services.kit.errors import Conflict, Forbidden, ValidationFailed
from services.notifications import consent, rosters
from services.notifications.quiet_hours import QuietHours
from services.notifications.templates import local_time, render
from services.notifications.tests.factories import TRIP

SECRET = "unit-secret-for-consent-links-0123456789"


def shanghai(hour: int, minute: int = 0, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai"))


def test_quiet_hours_hold_sms_and_wechat_until_seven():
    quiet = QuietHours()
    at_ten_pm = shanghai(22)
    resume = quiet.hold("sms", at_ten_pm)
    assert resume == shanghai(7, day=24)
    assert quiet.hold("wechat", shanghai(6, 59)) == shanghai(7)
    assert quiet.hold("email", at_ten_pm) is None
    assert quiet.hold("sms", shanghai(7)) is None
    assert quiet.hold("sms", shanghai(20, 59)) is None
    assert quiet.hold("sms", shanghai(21)) == shanghai(7, day=24)


@pytest.mark.parametrize("kind", ["confirmed", "cancelled", "rescheduled", "reminder"])
@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_every_notice_renders_in_both_languages(kind, language):
    context = {"guardian": "王芳", "pupil": "李雷", "label": "五年级(1)班",
               "school_name": "浦东新区实验小学", "trip": TRIP, "reason": "设备检修",
               "consent_url": "http://kepu.test/v1/consents/tok",
               "previous": {"starts_at": "2026-11-27T01:30:00.000000Z",
                            "ends_at": "2026-11-27T03:30:00.000000Z"}}
    notice = render(kind, language, context)
    assert notice.template == f"{kind}.{language}"
    assert "09:30–11:30" in notice.email and "09:30–11:30" in notice.short
    assert TRIP["title"] in notice.subject or kind == "reminder" or TRIP["title"] in \
        notice.email
    assert "\n" not in notice.subject and "\n" not in notice.short
    if kind != "cancelled":
        assert "http://kepu.test/v1/consents/tok" in notice.email
    else:
        assert "设备检修" in notice.email
    if kind == "rescheduled":
        assert ("11月27日" if language == "zh-CN" else "27 November") in notice.email


def test_times_are_shown_in_the_trips_time_zone():
    starts, ends = "2026-11-28T01:30:00.000000Z", "2026-11-28T03:30:00.000000Z"
    assert local_time(starts, ends, "Asia/Shanghai", "zh-CN") == \
        "2026年11月28日（星期六）09:30–11:30（北京时间）"
    assert local_time(starts, ends, "Asia/Shanghai", "en") == \
        "Saturday 28 November 2026, 09:30–11:30 (Beijing time)"
    assert local_time(starts, ends, "Asia/Urumqi", "zh-CN") == \
        "2026年11月28日（星期六）07:30–09:30（Asia/Urumqi 当地时间）"


def test_consent_link_verifies_and_expires(frozen):
    token = consent.sign(SECRET, "clm_1", "pup_1", TRIP["starts_at"])
    grant = consent.verify(SECRET, token)
    assert grant["claim_id"] == "clm_1" and grant["pupil_id"] == "pup_1"
    assert grant["expires_at"] == TRIP["starts_at"]
    frozen.set(datetime(2026, 11, 28, 1, 30, tzinfo=UTC))
    with pytest.raises(Forbidden) as caught:
        consent.verify(SECRET, token)
    assert caught.value.code == "consent-link-expired"


def test_tampered_or_foreign_tokens_are_refused(frozen):
    token = consent.sign(SECRET, "clm_1", "pup_1", TRIP["starts_at"])
    header, payload, signature = token.split(".")
    claims = {**jwt.decode(token, options={"verify_signature": False}), "pupil_id": "pup_2"}
    swapped = jwt.encode(claims, "guess" * 8, algorithm="HS256").split(".")[1]
    forged = [f"{header}.{swapped}.{signature}",
              f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}",
              consent.sign("another" * 6, "clm_1", "pup_1", TRIP["starts_at"]),
              auth.mint(SECRET, "school", "sch_1"), "not-a-token"]
    for bad in forged:
        with pytest.raises(Forbidden) as caught:
            consent.verify(SECRET, bad)
        assert caught.value.code == "consent-link-invalid", bad
    # and a consent link is no login token
    with pytest.raises(auth.InvalidToken):
        auth.verify(SECRET, token)


def _claim(repo, status="confirmed"):
    doc = rosters.build_document("sch_1", "五年级(1)班", [
        {"name": "李雷", "guardians": [{"name": "李爸爸", "phone": "13812345678",
                                       "channel": "sms", "opt_out": []}]},
        {"name": "韩梅梅", "guardians": [{"name": "韩妈妈", "email": "hmm@example.com",
                                          "channel": "email", "opt_out": []}]}])
    repo.replace_roster(doc)
    repo.add_claim({"_id": "clm_1", "school_id": "sch_1", "school_name": "实验小学",
                    "session_id": "ses_1", "labels": ["五年级(1)班", "五年级(9)班"],
                    "groups": [], "trip": TRIP, "status": status, "reminder": "off"})
    return [p["pupil_id"] for p in doc["pupils"]]


def test_answers_are_recorded_once_with_history(repo, frozen):
    li, han = _claim(repo)
    token = consent.sign(SECRET, "clm_1", li, TRIP["starts_at"])
    view = consent.page(repo, SECRET, token)
    assert view["pupil"] == "李*" and view["answer"] is None
    assert view["trip"]["local_time"].startswith("2026年11月28日")
    _, recorded = consent.answer(repo, SECRET, token, {"answer": "yes"})
    assert recorded
    _, recorded = consent.answer(repo, SECRET, token, {"answer": "yes"})
    assert not recorded
    view, recorded = consent.answer(repo, SECRET, token, {"answer": "no",
                                                          "guardian_name": "李爸爸"})
    assert recorded and view["answer"] == "no"
    assert len(repo.consent_records("clm_1", li)) == 2
    school = Actor("t", "school", "sch_1")
    listing = consent.claim_consents(repo, school, "clm_1")
    assert listing["summary"] == {"pupils": 2, "yes": 0, "no": 1, "pending": 1}
    item = next(i for i in listing["items"] if i["pupil_id"] == li)
    assert item["answer"] == "no" and item["changes"] == 1 and item["answered_by"] == "李爸爸"
    assert item["guardians"][0]["contact"] == "138****5678"
    assert listing["labels_without_roster"] == ["五年级(9)班"]
    with pytest.raises(Forbidden):
        consent.claim_consents(repo, Actor("t2", "school", "sch_2"), "clm_1")


def test_no_answer_for_a_cancelled_or_started_trip(repo, frozen):
    li, _ = _claim(repo, status="cancelled")
    token = consent.sign(SECRET, "clm_1", li, TRIP["starts_at"])
    with pytest.raises(Conflict) as caught:
        consent.answer(repo, SECRET, token, {"answer": "yes"})
    assert caught.value.code == "claim-cancelled"


def _reupload(repo, pupils):
    repo.replace_roster(rosters.build_document("sch_1", "五年级(1)班", pupils))


LI = {"name": "李雷", "guardians": [{"name": "李爸爸", "phone": "13812345678",
                                    "channel": "sms", "opt_out": []}]}
HAN = {"name": "韩梅梅", "guardians": [{"name": "韩妈妈", "email": "hmm@example.com",
                                      "channel": "email", "opt_out": []}]}


def test_a_link_goes_stale_when_its_pupil_leaves_the_roster(repo, frozen):
    li, han = _claim(repo)
    token = consent.sign(SECRET, "clm_1", han, TRIP["starts_at"], contact="hmm@example.com")
    assert consent.page(repo, SECRET, token)["pupil"] == "韩*梅"
    _reupload(repo, [LI])  # 韩梅梅 moved to another class
    for attempt in (lambda: consent.page(repo, SECRET, token),
                    lambda: consent.answer(repo, SECRET, token, {"answer": "yes"})):
        with pytest.raises(Conflict) as caught:
            attempt()
        assert caught.value.code == "consent-link-stale"
        assert "not on the class roster" in caught.value.detail
    assert repo.consent_records("clm_1", han) == []
    unnamed = consent.sign(SECRET, "clm_1", han, TRIP["starts_at"])  # links of before
    with pytest.raises(Conflict):
        consent.answer(repo, SECRET, unnamed, {"answer": "yes"})


def test_a_link_goes_stale_when_its_guardian_is_replaced(repo, frozen):
    li, _ = _claim(repo)
    old = consent.sign(SECRET, "clm_1", li, TRIP["starts_at"], contact="13812345678")
    assert consent.answer(repo, SECRET, old, {"answer": "yes"})[1]
    # the father renamed (a typo fixed) keeps his link: it follows his contact
    _reupload(repo, [{**LI, "guardians": [{**LI["guardians"][0], "name": "李大爸"}]}, HAN])
    assert consent.page(repo, SECRET, old)["answer"] == "yes"
    # the guardian replaced: the mother, another number
    _reupload(repo, [{**LI, "guardians": [{"name": "李妈妈", "phone": "13987654321",
                                           "channel": "sms", "opt_out": []}]}, HAN])
    for attempt in (lambda: consent.page(repo, SECRET, old),
                    lambda: consent.answer(repo, SECRET, old, {"answer": "no"})):
        with pytest.raises(Conflict) as caught:
            attempt()
        assert caught.value.code == "consent-link-stale"
        assert "no longer this pupil's guardian" in caught.value.detail
    new = consent.sign(SECRET, "clm_1", li, TRIP["starts_at"], contact="13987654321")
    view, recorded = consent.answer(repo, SECRET, new, {"answer": "no"})
    assert recorded and view["answer"] == "no"
    assert len(repo.consent_records("clm_1", li)) == 2


def test_a_link_names_its_contact_only_by_a_keyed_digest(frozen):
    token = consent.sign(SECRET, "clm_1", "pup_1", TRIP["starts_at"], contact="13812345678")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert "13812345678" not in token and "5678" not in str(claims)
    assert consent.verify(SECRET, token)["contact"] == consent.contact_digest(
        SECRET, "13812345678") != consent.contact_digest("another" * 6, "13812345678")


def test_a_retried_answer_with_its_request_key_records_once(repo, frozen):
    li, _ = _claim(repo)
    token = consent.sign(SECRET, "clm_1", li, TRIP["starts_at"], contact="13812345678")
    view, recorded = consent.answer(repo, SECRET, token, {"answer": "yes"}, "key-1")
    assert recorded and view["recorded"] is True
    # the guardian's other phone answers no meanwhile; the first "yes" is then retried
    assert consent.answer(repo, SECRET, token, {"answer": "no"}, "key-2")[1]
    view, recorded = consent.answer(repo, SECRET, token, {"answer": "yes"}, "key-1")
    assert recorded and view["answer"] == "no"  # answered as before; nothing new recorded
    assert [r["answer"] for r in repo.consent_records("clm_1", li)] == ["yes", "no"]
    with pytest.raises(ValidationFailed) as caught:
        consent.answer(repo, SECRET, token, {"answer": "no"}, "key-1")
    assert caught.value.code == "idempotency-key-reused"
    bound = repo.db.request_keys.find_one({"_id": f"consent|clm_1|{li}|key-1"})
    assert bound["expires_at"] > frozen()


def test_a_key_whose_first_attempt_lost_a_race_records_on_retry(repo, frozen):
    li, _ = _claim(repo)
    token = consent.sign(SECRET, "clm_1", li, TRIP["starts_at"], contact="13812345678")
    # the first attempt bound its key to seq 1, then another answer took seq 1 first
    repo.request_keys.bind("consent", f"clm_1|{li}", "key-1", consent.record_id("clm_1", li, 1),
                           None)
    assert consent.answer(repo, SECRET, token, {"answer": "no"})[1]
    view, recorded = consent.answer(repo, SECRET, token, {"answer": "yes"}, "key-1")
    assert recorded and view["answer"] == "yes"
    assert [r["answer"] for r in repo.consent_records("clm_1", li)] == ["no", "yes"]
