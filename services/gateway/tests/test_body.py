"""JSON bodies that cannot travel on are refused at the gateway, naming the field."""

import json

import pytest
from marshmallow import Schema

from services.contracts.common import Day, Whole
from services.gateway.body import parse_json
from services.gateway.problems import Problem
from services.kit.boundary import load
from services.kit.errors import ValidationFailed


def test_a_lone_surrogate_in_a_value_names_its_field():
    with pytest.raises(ValidationFailed) as caught:
        parse_json(b'{"name": "ok", "groups": [{"label": "\\ud800x"}]}')
    assert list(caught.value.errors) == ["groups.0.label"]


def test_a_nul_or_surrogate_in_a_member_name_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        parse_json(b'{"rates": {"sen\\u0000ior": 1, "\\udc00": 2}}')
    assert set(caught.value.errors) == {"rates.sen?ior", "rates.?"}


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_numbers_are_malformed(literal):
    with pytest.raises(Problem) as caught:
        parse_json(b'{"amount": ' + literal + b"}")
    assert caught.value.status == 400


def test_ordinary_text_passes_untouched():
    body = {"name": "上海科技馆 🚀", "note": "\u202eRTL\u202c", "nul": "a\x00b"}
    assert parse_json(json.dumps(body).encode()) == body


class Counted(Schema):
    students = Whole(required=True)
    day = Day()


@pytest.mark.parametrize("value", [1.5, True, "1.5", float("inf"), float("nan")])
def test_a_whole_number_is_not_truncated(value):
    with pytest.raises(ValidationFailed) as caught:
        load(Counted, {"students": value})
    assert "students" in caught.value.errors


@pytest.mark.parametrize("value", [30, 30.0, "30"])
def test_whole_numbers_in_any_json_form_load(value):
    assert load(Counted, {"students": value})["students"] == 30


@pytest.mark.parametrize("day", ["0001-01-01", "0271-05-01", "9999-12-31"])
def test_days_outside_the_years_kepu_serves_are_refused(day):
    with pytest.raises(ValidationFailed) as caught:
        load(Counted, {"students": 1, "day": day})
    assert caught.value.errors["day"] == ["The year must be between 1970 and 2200."]
