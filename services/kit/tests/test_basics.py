from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from marshmallow import fields

from services.contracts.common import Strict
from services.kit import auth, clock
from services.kit.boundary import load, shared
from services.kit.errors import ValidationFailed
from services.kit.logs import mask_text


def test_stamps_sort_as_times_compare():
    a = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    b = a + timedelta(microseconds=1)
    assert clock.stamp(a) == "2026-01-02T03:04:05.000000Z" and clock.stamp(a) < clock.stamp(b)
    shanghai = a.astimezone(timezone(timedelta(hours=8)))
    assert clock.stamp(shanghai) == clock.stamp(a) and clock.parse(clock.stamp(a)) == a
    with pytest.raises(ValueError):
        clock.stamp(datetime(2026, 1, 1))


def test_tokens_round_trip_and_refuse_forgery():
    token = auth.mint("s" * 32, "school", "sch_1", "teacher-1")
    assert auth.verify("s" * 32, token) == auth.Principal("teacher-1", "school", "sch_1")
    with pytest.raises(auth.InvalidToken):
        auth.verify("t" * 32, token)
    with pytest.raises(auth.InvalidToken):
        auth.verify("s" * 32, auth.mint("s" * 32, "admin", ttl=timedelta(seconds=-60)))
    with pytest.raises(ValueError):
        auth.mint("s" * 32, "school")  # a school token names its school
    with pytest.raises(ValueError):
        auth.mint("s" * 32, "admin", ttl=timedelta(hours=25))  # operators' tokens: 24 h at most


def test_tokens_need_the_api_audience_and_a_jti():
    import jwt

    now = int(datetime.now(UTC).timestamp())
    base = {"sub": "u", "role": "admin", "iss": "kepu", "aud": "kepu-api", "jti": "j",
            "iat": now, "exp": now + 60}
    assert auth.verify("s" * 32, jwt.encode(base, "s" * 32, algorithm="HS256")).sub == "u"
    for broken in ({"aud": "another-api"}, {"aud": None}, {"jti": None}, {"iss": "other"}):
        claims = {k: v for k, v in {**base, **broken}.items() if v is not None}
        with pytest.raises(auth.InvalidToken):
            auth.verify("s" * 32, jwt.encode(claims, "s" * 32, algorithm="HS256"))
    district = auth.verify("s" * 32, auth.mint("s" * 32, "district", "dis_1"))
    assert (district.role, district.org) == ("district", "dis_1")


class Inner(Strict):
    n = fields.Integer(required=True)


class Outer(Strict):
    name = fields.String(required=True)
    items = fields.List(fields.Nested(Inner), required=True)


def test_validation_errors_name_nested_fields():
    with pytest.raises(ValidationFailed) as caught:
        load(Outer, {"items": [{"n": 1}, {"n": "x"}], "extra": 1})
    assert set(caught.value.errors) == {"name", "items.1.n", "extra"}


def test_a_shared_schema_carries_nothing_from_one_load_to_the_next():
    assert shared(Outer) is shared(Outer)
    with pytest.raises(ValidationFailed):
        load(Outer, {"name": "a", "items": [{"n": "x"}]})
    assert load(Outer, {"name": "b", "items": [{"n": 2}]}) == {"name": "b", "items": [{"n": 2}]}
    assert load(Outer, {"name": "c"}, partial=True) == {"name": "c"}
    assert load(Outer, {"name": "d", "items": []}) == {"name": "d", "items": []}


def test_contacts_are_masked_in_log_lines():
    assert mask_text("家长 13812345678, li.lei@example.com") == \
        "家长 138****5678, l***@example.com"


def test_a_refusal_echoes_unknown_field_names_clipped_and_bounded():
    class Small(Strict):
        n = fields.Integer()

    with pytest.raises(ValidationFailed) as refused:
        load(Small, {"k" * 10_000: 1})
    assert list(refused.value.errors) == ["k" * 80 + "…"]
    with pytest.raises(ValidationFailed) as refused:
        load(Small, {f"f{i:04d}": 1 for i in range(1000)})
    errors = refused.value.errors
    assert len(errors) == 51 and errors["_more"] == ["950 more invalid fields"]
    assert len(refused.value.detail) < 1000
