"""Identifiers: one spelling per contact, masked for display."""

from __future__ import annotations

import pytest

from services.identity import contacts
from services.kit.errors import ValidationFailed


@pytest.mark.parametrize("raw", ["13812345678", "+86 138 1234 5678", "0086-138-1234-5678",
                                 "8613812345678", " 138-1234-5678 "])
def test_a_mainland_mobile_in_any_spelling_is_one_identifier(raw):
    assert contacts.parse(raw) == ("mobile", "+8613812345678")


def test_e_mail_addresses_are_lower_cased():
    assert contacts.parse(" Wang.Li@Example.CN ") == ("email", "wang.li@example.cn")


@pytest.mark.parametrize("raw", ["", "   ", "12812345678", "1381234567", "wang@", "@x.cn",
                                 "+1 415 555 0100", "not an identifier"])
def test_anything_else_is_refused_naming_the_field(raw):
    with pytest.raises(ValidationFailed) as refused:
        contacts.parse(raw)
    assert "identifier" in refused.value.errors


def test_masks_show_enough_to_recognise_and_not_to_contact():
    assert contacts.mask("email", "wang.li@example.cn") == "w***@example.cn"
    assert contacts.mask("mobile", "+8613812345678") == "+86 138****5678"
