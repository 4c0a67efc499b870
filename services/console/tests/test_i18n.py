"""Language and formats: yuan, local times, class labels, the catalogue."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from services.console import i18n


def test_money_is_shown_in_yuan_from_fen() -> None:
    assert i18n.yuan(1250) == "¥12.50"
    assert i18n.yuan(500000) == "¥5,000.00"
    assert i18n.yuan(-5) == "-¥0.05"
    assert i18n.yuan(None) == "—"


@pytest.mark.parametrize(("typed", "fen"), [("12.5", 1250), ("¥12.50", 1250), ("１２．５", 1250),
                                            ("5,000.00", 500000), ("0", 0), ("￥3", 300)])
def test_yuan_as_typed_becomes_fen(typed: str, fen: int) -> None:
    assert i18n.fen_from_yuan(typed) == fen


@pytest.mark.parametrize("typed", ["", "abc", "1.234", "-3", "1.2.3", "12元"])
def test_a_bad_amount_is_refused(typed: str) -> None:
    with pytest.raises(ValueError):
        i18n.fen_from_yuan(typed)


def test_a_full_width_class_label_matches_the_rosters() -> None:
    known = ["五年级(1)班", "五年级(2)班"]
    assert i18n.match_label("五年级（2）班", known) == "五年级(2)班"
    assert i18n.match_label(" 五年级 (2) 班　", known) == "五年级(2)班"
    assert i18n.match_label("五年级（３）班", known) is None


def test_free_text_keeps_its_chinese_punctuation_while_numbers_fold() -> None:
    assert i18n.clean_text("　星空探秘：天文馆　") == "星空探秘：天文馆"
    assert i18n.fold("１２０") == "120"
    assert i18n.fold("ｌｉ＠ｅｘａｍｐｌｅ．ｃｎ") == "li@example.cn"


def test_times_are_shown_in_the_venues_zone() -> None:
    stamp = "2026-10-15T01:30:00Z"
    assert i18n.local_time(stamp, "Asia/Shanghai") == "2026年10月15日（周四）09:30"
    assert i18n.local_time(stamp, "Asia/Urumqi", "en") == "Thu 2026-10-15 07:30"
    assert i18n.local_input(stamp, "Asia/Shanghai") == "2026-10-15T09:30"
    assert i18n.from_local_input("2026-10-15T09:30", "Asia/Shanghai") == \
        "2026-10-15T09:30:00+08:00"


def test_the_chinese_catalogue_translates_every_message() -> None:
    po = i18n.TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as handle:
        catalogue = read_po(handle, locale="zh_CN")
    untranslated = [m.id for m in catalogue if m.id and not m.string]
    assert not untranslated
    assert i18n.translations("zh-CN").gettext("Sign in") == "登录"
    assert i18n.translations("en").gettext("Sign in") == "Sign in"


def test_the_catalogue_holds_every_message_the_code_uses() -> None:
    from babel.messages.extract import extract_from_dir

    po = i18n.TRANSLATIONS / "zh_CN" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as handle:
        known = {m.id for m in read_po(handle, locale="zh_CN") if m.id}
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    used = {message for _f, _l, message, _c, _x in extract_from_dir(
        str(i18n.TRANSLATIONS.parent), method_map, options) if isinstance(message, str)}
    used |= {m[0] for _f, _l, m, _c, _x in extract_from_dir(
        str(i18n.TRANSLATIONS.parent), method_map, options) if isinstance(m, tuple)}
    missing = sorted(used - known)
    assert not missing, f"run the pybabel steps in docs/console.md: {missing}"
