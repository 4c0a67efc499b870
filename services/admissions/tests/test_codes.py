from __future__ import annotations

from datetime import timedelta

import pytest

from services.admissions.tests.conftest import NOW, sent_codes
from services.kit.errors import Forbidden, TooManyRequests, ValidationFailed

MOBILE = "13812345678"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_right_code_gives_a_pass_once(codes, repo):
    codes.send(MOBILE)
    code = sent_codes(repo)[-1]
    answer = codes.verify(MOBILE, code)
    assert codes.mobile_of(answer["verification"]) == MOBILE
    with pytest.raises(ValidationFailed):  # used once
        codes.verify(MOBILE, code)


def test_the_number_is_never_stored_as_a_key(codes, repo):
    codes.send(MOBILE)
    doc = repo.db.codes.find_one()
    assert MOBILE not in doc["_id"] and MOBILE not in str(doc.get("code_digest"))


def test_five_wrong_codes_lock_the_number(codes, repo, now):
    codes.send(MOBILE)
    code = sent_codes(repo)[-1]
    for _ in range(4):
        with pytest.raises(ValidationFailed):
            codes.verify(MOBILE, wrong(code))
    with pytest.raises(TooManyRequests) as locked:
        codes.verify(MOBILE, wrong(code))
    assert locked.value.code == "mobile-locked"
    with pytest.raises(TooManyRequests):  # even the right code now
        codes.verify(MOBILE, code)
    now.set(NOW + timedelta(minutes=5))
    with pytest.raises(TooManyRequests):  # and no new code while locked
        codes.send(MOBILE)
    now.set(NOW + timedelta(minutes=31))
    codes.send(MOBILE)
    assert codes.verify(MOBILE, sent_codes(repo)[-1])["verification"]


def test_resends_are_limited(codes, now, settings):
    codes.send(MOBILE)
    with pytest.raises(TooManyRequests) as soon:
        codes.send(MOBILE)
    assert soon.value.code == "code-resend-too-soon"
    for minute in range(1, settings.resends):
        now.set(NOW + timedelta(minutes=minute))
        codes.send(MOBILE)
    now.set(NOW + timedelta(minutes=settings.resends + 1))
    with pytest.raises(TooManyRequests) as limit:
        codes.send(MOBILE)
    assert limit.value.code == "code-resend-limit"


def test_an_expired_code_is_refused(codes, repo, now):
    codes.send(MOBILE)
    code = sent_codes(repo)[-1]
    now.set(NOW + timedelta(minutes=6))
    with pytest.raises(ValidationFailed):
        codes.verify(MOBILE, code)


def test_a_forged_pass_is_refused(codes):
    with pytest.raises(Forbidden):
        codes.mobile_of("eyJtIjoiMTM4MTIzNDU2NzgifQ.forged")
