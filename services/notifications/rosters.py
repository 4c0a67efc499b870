"""Class rosters: pupils and their guardians, from JSON or from a school's CSV export.

A roster is checked whole before anything is stored: every bad row is reported by its row
and column, and one bad row refuses the upload. The stored roster is one document, so a
replacement is one write and a reader sees either the old roster or the new one.

CSV: one row per guardian, the pupil repeated on each of their guardians' rows. Row n is
the n-th line after the header (file line n+1). Headers may be English or Chinese:
pupil/学生姓名, pupil_ref/学号, guardian/家长姓名, relation/关系, phone/手机, email/邮箱,
wechat_openid/微信openid, language/语言, channel/通知方式, opt_out/退订.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from typing import Any

from marshmallow import ValidationError

from services.contracts.notifications import (
    CHANNELS,
    CONTACT_OF,
    MAX_GUARDIANS,
    MAX_PUPILS,
    GuardianInput,
    RosterUpload,
)
from services.kit import clock
from services.kit.boundary import load
from services.kit.errors import ValidationFailed
from services.notifications.masking import mask_guardian

COLUMNS: dict[str, tuple[str, ...]] = {
    "pupil": ("pupil", "pupil_name", "student", "学生", "学生姓名", "姓名"),
    "pupil_ref": ("pupil_ref", "ref", "student_no", "学号"),
    "guardian": ("guardian", "guardian_name", "家长", "家长姓名", "监护人"),
    "relation": ("relation", "关系", "与学生关系"),
    "phone": ("phone", "mobile", "手机", "手机号", "电话"),
    "email": ("email", "邮箱", "电子邮箱"),
    "wechat_openid": ("wechat_openid", "openid", "微信", "微信openid"),
    "language": ("language", "语言"),
    "channel": ("channel", "通知方式", "渠道"),
    "opt_out": ("opt_out", "退订"),
}
REQUIRED_COLUMNS = ("pupil", "guardian")
LABEL_MAX = 40
_ALIASES = {alias.lower(): field for field, names in COLUMNS.items() for alias in names}
_LIST_SPLIT = re.compile(r"[;,、|\s]+")
_GUARDIAN_FIELDS = ("name", "relation", "phone", "email", "wechat_openid", "language",
                    "channel", "opt_out")
# CSV column → GuardianInput field
_GUARDIAN_OF_COLUMN = {"guardian": "name", "relation": "relation", "phone": "phone",
                       "email": "email", "wechat_openid": "wechat_openid",
                       "language": "language", "channel": "channel", "opt_out": "opt_out"}


def roster_key(school_id: str, label: str) -> str:
    return f"{school_id}|{label}"


def pupil_id(school_id: str, label: str, name: str, ref: str | None) -> str:
    """Stable across re-uploads of the class, so consent answers stay with the pupil."""
    digest = hashlib.sha256(f"{school_id}|{label}|{ref or ''}|{name}".encode()).hexdigest()
    return f"pup_{digest[:16]}"


def guardian_id(pupil: str, name: str) -> str:
    return f"gdn_{hashlib.sha256(f'{pupil}|{name}'.encode()).hexdigest()[:16]}"


def check_label(label: str) -> str:
    """A class label as stored: trimmed, 1-40 printable characters (e.g. 五年级(2)班)."""
    label = (label or "").strip()
    if not 1 <= len(label) <= LABEL_MAX or any(ord(ch) < 32 for ch in label):
        raise ValidationFailed("label: a class label of 1-40 printable characters",
                               {"label": ["a class label of 1-40 printable characters"]})
    return label


def default_channel(guardian: dict[str, Any]) -> str:
    """The guardian's channel when they named none: sms, then email, then wechat."""
    have = [c for c in ("sms", "email", "wechat") if guardian.get(CONTACT_OF[c])]
    usable = [c for c in have if c not in guardian.get("opt_out", [])]
    return (usable or have)[0]


def _stored_guardian(pupil: str, raw: dict[str, Any]) -> dict[str, Any]:
    opt_out = sorted(set(raw.get("opt_out") or []), key=CHANNELS.index)
    guardian = {field: raw.get(field) for field in _GUARDIAN_FIELDS}
    guardian["opt_out"] = opt_out
    guardian["channel"] = raw.get("channel") or default_channel(guardian)
    guardian["guardian_id"] = guardian_id(pupil, raw["name"])
    return guardian


def build_document(school_id: str, label: str, pupils: list[dict[str, Any]]) -> dict[str, Any]:
    """The roster document as stored (ids assigned, channels defaulted)."""
    stored = []
    for pupil in pupils:
        pid = pupil_id(school_id, label, pupil["name"], pupil.get("ref"))
        stored.append({"pupil_id": pid, "name": pupil["name"], "ref": pupil.get("ref"),
                       "guardians": [_stored_guardian(pid, g) for g in pupil["guardians"]]})
    return {
        "_id": roster_key(school_id, label),
        "school_id": school_id,
        "label": label,
        "pupils": stored,
        "pupil_count": len(stored),
        "guardian_count": sum(len(p["guardians"]) for p in stored),
        "updated_at": clock.stamp(),
    }


def _duplicate_guardians(pupils: list[dict[str, Any]]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for i, pupil in enumerate(pupils):
        names = [g["name"] for g in pupil["guardians"]]
        for j, name in enumerate(names):
            if name in names[:j]:
                errors[f"pupils.{i}.guardians.{j}.name"] = ["the same guardian twice"]
    return errors


def from_json(document: Any) -> list[dict[str, Any]]:
    """Pupils from a JSON roster, or ValidationFailed naming each bad field."""
    pupils = load(RosterUpload, document)["pupils"]
    errors = _duplicate_guardians(pupils)
    if errors:
        raise ValidationFailed(f"invalid fields: {', '.join(sorted(errors))}", errors)
    return pupils


def _header(row: list[str]) -> tuple[dict[int, str], dict[str, list[str]]]:
    columns: dict[int, str] = {}
    errors: dict[str, list[str]] = {}
    for index, name in enumerate(row):
        key = name.strip().lower()
        if not key:
            continue
        field = _ALIASES.get(key)
        if field is None:
            errors.setdefault("header", []).append(f"unknown column {name.strip()!r}")
        elif field in columns.values():
            errors.setdefault("header", []).append(f"column {name.strip()!r} given twice")
        else:
            columns[index] = field
    for field in REQUIRED_COLUMNS:
        if field not in columns.values():
            errors.setdefault("header", []).append(f"missing column {field!r}")
    if not any(f in columns.values() for f in ("phone", "email", "wechat_openid")):
        errors.setdefault("header", []).append("no contact column (phone, email or "
                                               "wechat_openid)")
    return columns, errors


def from_csv(text: str) -> list[dict[str, Any]]:
    """Pupils from a CSV roster (UTF-8), or ValidationFailed naming `rows.<n>.<column>`."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationFailed("the CSV is empty", {"header": ["the CSV is empty"]}) from None
    except csv.Error as exc:
        raise ValidationFailed(f"unreadable CSV: {exc}", {"header": [str(exc)]}) from None
    columns, errors = _header(header)
    if errors:
        raise ValidationFailed("; ".join(errors["header"]), errors)
    names = {field: header[index].strip() for index, field in columns.items()}
    pupils: dict[tuple[str, str | None], dict[str, Any]] = {}
    rows = 0
    try:
        for number, row in enumerate(reader, start=1):
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
                errors.setdefault(f"rows.{number}", []).append("more cells than columns")
            _take_row(number, row, columns, names, pupils, errors)
    except csv.Error as exc:
        errors.setdefault(f"rows.{rows + 1}", []).append(f"unreadable CSV: {exc}")
    if not rows and not errors:
        errors["rows"] = ["the CSV has a header but no rows"]
    if len(pupils) > MAX_PUPILS:
        errors.setdefault("rows", []).append(f"more than {MAX_PUPILS} pupils in one class")
    if errors:
        raise ValidationFailed(_describe(errors), errors)
    return [{"name": p["name"], "ref": p["ref"], "guardians": p["guardians"]}
            for p in pupils.values()]


def _take_row(number: int, row: list[str], columns: dict[int, str], names: dict[str, str],
              pupils: dict[tuple[str, str | None], dict[str, Any]],
              errors: dict[str, list[str]]) -> None:
    values = {field: (row[index].strip() if index < len(row) else "")
              for index, field in columns.items()}

    def fail(field: str, message: str) -> None:
        errors.setdefault(f"rows.{number}.{names.get(field, field)}", []).append(message)

    pupil_name = values.get("pupil", "")
    if not pupil_name or len(pupil_name) > 50:
        fail("pupil", "a pupil's name of 1-50 characters is required")
    ref = values.get("pupil_ref") or None
    if ref is not None and len(ref) > 32:
        fail("pupil_ref", "at most 32 characters")
    raw = {_GUARDIAN_OF_COLUMN[f]: v for f, v in values.items() if f in _GUARDIAN_OF_COLUMN}
    if "opt_out" in raw:
        raw["opt_out"] = [part for part in _LIST_SPLIT.split(raw["opt_out"]) if part]
    try:
        guardian = GuardianInput().load(raw)
    except ValidationError as exc:
        column_of = {v: k for k, v in _GUARDIAN_OF_COLUMN.items()}
        for field, messages in exc.messages.items():
            flat = _messages(messages)
            fail(column_of.get(field, field), "; ".join(flat))
        return
    if not pupil_name or len(pupil_name) > 50 or (ref is not None and len(ref) > 32):
        return
    pupil = pupils.setdefault((pupil_name, ref),
                              {"name": pupil_name, "ref": ref, "guardians": []})
    if any(g["name"] == guardian["name"] for g in pupil["guardians"]):
        fail("guardian", f"{pupil_name} already has a guardian of this name")
    elif len(pupil["guardians"]) >= MAX_GUARDIANS:
        fail("guardian", f"{pupil_name} has more than {MAX_GUARDIANS} guardians")
    else:
        pupil["guardians"].append(guardian)


def _messages(messages: Any) -> list[str]:
    if isinstance(messages, dict):
        return [f"{k}: {m}" for k, v in messages.items() for m in _messages(v)]
    if isinstance(messages, list):
        return [str(m) for m in messages]
    return [str(messages)]


def _describe(errors: dict[str, list[str]]) -> str:
    parts = []
    for key in sorted(errors, key=_row_order):
        bits = key.split(".", 2)
        if bits[0] == "rows" and len(bits) >= 2:
            where = f"row {bits[1]} (file line {int(bits[1]) + 1})"
            if len(bits) == 3:
                where += f", column {bits[2]}"
        else:
            where = key
        parts.append(f"{where}: {'; '.join(errors[key])}")
    return "; ".join(parts[:20]) + ("; …" if len(parts) > 20 else "")


def _row_order(key: str) -> tuple[int, str]:
    bits = key.split(".")
    if bits[0] == "rows" and len(bits) > 1 and bits[1].isdigit():
        return int(bits[1]), key
    return -1, key


def parse(upload: dict[str, Any]) -> list[dict[str, Any]]:
    """`{"format": "csv", "text": ...}` or `{"format": "json", "document": {...}}`."""
    if upload.get("format") == "csv":
        return from_csv(upload.get("text") or "")
    return from_json(upload.get("document"))


def view(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored roster as listed: guardians' contacts masked."""
    return {
        "school_id": doc["school_id"], "label": doc["label"],
        "pupils": [{"pupil_id": p["pupil_id"], "name": p["name"], "ref": p.get("ref"),
                    "guardians": [mask_guardian(g) for g in p["guardians"]]}
                   for p in doc["pupils"]],
        **summary(doc),
    }


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    return {"label": doc["label"], "pupil_count": doc["pupil_count"],
            "guardian_count": doc["guardian_count"], "version": doc.get("version", 1),
            "updated_at": doc["updated_at"]}
