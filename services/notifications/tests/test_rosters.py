from __future__ import annotations

import pytest

from services.kit.errors import ValidationFailed
from services.notifications import rosters
from services.notifications.masking import (
    mask_email,
    mask_name,
    mask_openid,
    mask_phone,
)

HEADER = "学生姓名,学号,家长姓名,关系,手机,邮箱,微信openid,语言,通知方式,退订\n"


def csv_rows(count: int, bad_row: int | None = None) -> str:
    lines = [HEADER]
    for n in range(1, count + 1):
        phone = "1234" if n == bad_row else f"139 0000 {n:04d}"
        lines.append(f"王小{n},{n:02d},王{n}妈妈,母亲,{phone},mum{n}@example.com,,zh-CN,sms,\n")
    return "".join(lines)


def test_csv_with_chinese_headers_and_names_is_read():
    text = csv_rows(3) + "王小1,01,王1爸爸,父亲,+86 13700000001,,oDad_000001,en,wechat,sms;email\n"
    pupils = rosters.from_csv(text)
    assert [p["name"] for p in pupils] == ["王小1", "王小2", "王小3"]
    mum, dad = pupils[0]["guardians"]
    assert mum["phone"] == "13900000001" and mum["channel"] == "sms"
    assert dad["phone"] == "13700000001" and dad["language"] == "en"
    assert dad["opt_out"] == ["sms", "email"] and dad["channel"] == "wechat"


def test_bad_phone_in_row_7_is_named_by_row_and_column():
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv(csv_rows(10, bad_row=7))
    assert list(caught.value.errors) == ["rows.7.手机"]
    assert "row 7" in caught.value.detail and "手机" in caught.value.detail
    assert "mainland mobile" in caught.value.errors["rows.7.手机"][0]


def test_every_bad_row_is_reported():
    text = ("pupil,guardian,phone,email,channel,language\n"
            "李雷,李爸爸,13800000000,,,\n"
            ",韩妈妈,13800000001,,,\n"                      # row 2: no pupil
            "韩梅梅,韩爸爸,,not-an-email,,\n"               # row 3: bad email, no contact left
            "张三,张妈妈,13800000002,,email,\n"             # row 4: email channel, no email
            "李四,李妈妈,13800000003,,,fr\n")               # row 5: language
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv(text)
    errors = caught.value.errors
    assert set(errors) == {"rows.2.pupil", "rows.3.email", "rows.4.channel", "rows.5.language"}


def test_header_problems_are_named():
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv("pupil,shoe_size\n李雷,42\n")
    messages = " ".join(caught.value.errors["header"])
    assert "shoe_size" in messages and "guardian" in messages and "contact" in messages
    with pytest.raises(ValidationFailed):
        rosters.from_csv("")
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv("pupil,guardian,phone\n")
    assert "rows" in caught.value.errors


def test_a_guardian_needs_a_contact_and_not_twice():
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv("pupil,guardian,phone\n李雷,李爸爸,\n李雷,李爸爸,13800000000\n"
                         "李雷,李爸爸,13800000001\n")
    assert set(caught.value.errors) == {"rows.1.phone", "rows.3.guardian"}


def test_json_roster_errors_name_the_field_path():
    document = {"pupils": [
        {"name": "李雷", "guardians": [{"name": "李爸爸", "phone": "12345"}]},
        {"name": "韩梅梅", "guardians": [{"name": "韩妈妈", "email": "hmm@example.com",
                                          "channel": "wechat"}]},
        {"name": "李雷", "guardians": [{"name": "李妈妈", "email": "lmm@example.com"}]},
    ]}
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_json(document)
    assert set(caught.value.errors) == {"pupils.0.guardians.0.phone",
                                        "pupils.1.guardians.0.channel", "pupils.2.name"}
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_json({"pupils": []})
    assert "pupils" in caught.value.errors


def test_stored_roster_has_stable_ids_and_defaults(repo):
    pupils = rosters.from_json({"pupils": [
        {"name": "李雷", "guardians": [{"name": "李爸爸", "email": "li@example.com",
                                       "phone": "13812345678", "opt_out": ["sms"]}]}]})
    doc = rosters.build_document("sch_1", "五年级(2)班", pupils)
    guardian = doc["pupils"][0]["guardians"][0]
    assert guardian["channel"] == "email"  # sms is the default, but they opted out of it
    again = rosters.build_document("sch_1", "五年级(2)班", pupils)
    assert again["pupils"][0]["pupil_id"] == doc["pupils"][0]["pupil_id"]
    assert again["pupils"][0]["guardians"][0]["guardian_id"] == guardian["guardian_id"]
    first = repo.replace_roster(doc)
    second = repo.replace_roster(again)
    assert (first["version"], second["version"]) == (1, 2)
    view = rosters.view(second)
    listed = view["pupils"][0]["guardians"][0]
    assert listed["phone"] == "138****5678" and listed["email"] == "l***@example.com"
    assert view["pupil_count"] == 1 and view["guardian_count"] == 1


def test_label_is_checked():
    assert rosters.check_label(" 五年级(2)班 ") == "五年级(2)班"
    for bad in ("", "x" * 41, "a\nb"):
        with pytest.raises(ValidationFailed):
            rosters.check_label(bad)


def test_masks():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_email("li.ming@example.com") == "l***@example.com"
    assert mask_openid("oAbCdEfGhIjK") == "oAb***IjK"
    assert (mask_name("王小明"), mask_name("李雷"), mask_name("欧阳小明")) == \
        ("王*明", "李*", "欧**明")


def _all_text(exc: ValidationFailed) -> str:
    """Everything a refusal carries, as it would be logged."""
    return str(exc.args) + exc.detail + repr(exc.errors)


def test_errors_name_row_and_column_never_names_or_contacts():
    text = ("pupil,guardian,phone,email,channel\n"
            "王小明,王妈妈,13812345678,wang.mum@example.com,\n"
            "王小明,王妈妈,13912345678,,\n"                   # row 2: the same guardian again
            "李小红,李爸爸,138-1234-567,,\n"                   # row 3: a mistyped number
            "赵小刚,赵妈妈,,_zhao@mail.example.cn,sms\n"       # row 4: sms without a phone
            "钱小丽,钱妈妈,+86 139 8765 4321,not-an-email@,\n")  # row 5: a bad e-mail address
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv(text)
    errors = caught.value.errors
    assert set(errors) == {"rows.2.guardian", "rows.3.phone", "rows.4.channel",
                           "rows.5.email"}
    assert errors["rows.2.guardian"] == ["this pupil already has this guardian (row 1)"]
    assert "row 3 (file line 4), column phone: not a mainland mobile number" in \
        caught.value.detail
    logged = _all_text(caught.value)
    for secret in ("王小明", "王妈妈", "李小红", "李爸爸", "赵小刚", "钱小丽", "138-1234-567",
                   "1381234567", "_zhao@mail.example.cn", "zhao", "not-an-email",
                   "13912345678", "+86 139 8765 4321", "8765"):
        assert secret not in logged, secret


def test_a_roster_without_its_header_line_echoes_none_of_its_cells():
    # the relation cell 家长 happens to name the guardian column
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv("王小明,001,王妈妈,家长,138-1234-5678\n李小红,002,李爸爸,家长,\n")
    logged = _all_text(caught.value)
    assert "unknown columns 1, 2, 3, 5 and no pupil column (is the header line missing?)" \
        in logged
    assert "王小明" not in logged and "王妈妈" not in logged and "1234" not in logged


def test_echoed_header_cells_are_capped_and_masked():
    long_name = "x" * 500
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv(f"pupil,guardian,phone,{long_name},li.ming@example.com\n")
    messages = caught.value.errors["header"]
    assert messages[0] == f"column 4: unknown column {'x' * rosters.SHOWN_MAX + '…'!r}"
    assert "li.ming" not in " ".join(messages) and "column 5" in messages[1]


def test_a_one_mebibyte_adversarial_roster_is_refused_briefly():
    # ~1 MiB of header cells, each long, unknown, address-like and full of digits
    cell = "a." * 30 + "13812345678@" + "b" * 20
    header = ",".join(f"{cell}{n}" for n in range((1 << 20) // len(cell)))
    text = "pupil,guardian,phone," + header + "\n李雷,李爸爸,13800000000\n"
    assert len(text) >= 1 << 20
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv(text)
    messages = caught.value.errors["header"]
    assert len(messages) <= rosters.REPORTED_MAX + 1
    assert all(len(m) <= rosters.SHOWN_MAX + 40 for m in messages)
    assert messages[-1].startswith("… and ") and len(caught.value.detail) < 6000
    assert "13812345678" not in _all_text(caught.value)


def test_a_one_mebibyte_roster_of_bad_rows_reports_a_bounded_list():
    row = "学生,家长," + "9" * 300 + ",x@\n"
    text = "pupil,guardian,phone,email\n" + row * ((1 << 20) // len(row) + 1)
    assert len(text) >= 1 << 20
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv(text)
    errors = caught.value.errors
    assert len(errors) <= rosters.REPORTED_MAX + 1
    assert any(f"more than {rosters.ROWS_MAX} rows" in m for m in errors["rows"])
    assert "not listed" in errors["rows"][-1]
    assert "999999" not in _all_text(caught.value)


def test_a_cell_longer_than_any_valid_value_is_refused_without_checking_it():
    with pytest.raises(ValidationFailed) as caught:
        rosters.from_csv("pupil,guardian,email\n李雷,李爸爸," + "a" * 5000 + "@example.com\n")
    assert caught.value.errors == {"rows.1.email": [f"longer than {rosters.CELL_MAX} "
                                                    "characters"]}
