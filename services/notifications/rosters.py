"""Class rosters: pupils and their guardians, from JSON or from a school's CSV export.

A roster is checked whole before anything is stored: every bad row is reported by its row
and column, and one bad row refuses the upload. The stored roster is one document, so a
replacement is one write and a reader sees either the old roster or the new one.

CSV: one row per guardian, the pupil repeated on each of their guardians' rows. Row n is
the n-th line after the header (file line n+1). Headers may be English or Chinese:
pupil/学生姓名, pupil_ref/学号, guardian/家长姓名, relation/关系, phone/手机, email/邮箱,
wechat_openid/微信openid, language/语言, channel/通知方式, opt_out/退订.

Errors name a row and a column, never what a cell held: they reach the logs (every refused
call is logged), and a roster is minors' names and their guardians' contacts. Only header
cells are echoed, cut to `SHOWN_MAX` characters with contacts masked. A roster cannot be
longer than a full class allows, nor report more than `REPORTED_MAX` errors, so even a
hostile upload is answered quickly and briefly.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from typing import Any

from marshmallow import ValidationError

from services.contracts.common import class_label_key
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
from services.kit.logs import mask_text
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
SHOWN_MAX = 40  # characters of a header cell an error may echo
CELL_MAX = 320  # longer than any valid cell (an e-mail address is at most 254)
ROWS_MAX = MAX_PUPILS * MAX_GUARDIANS  # one row per guardian
REPORTED_MAX = 50  # error entries reported; the rest are counted
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


def shown(value: str) -> str:
    """A cell as an error may echo it: at most SHOWN_MAX characters, contacts masked."""
    value = value.strip()
    cut = value[:SHOWN_MAX] + ("…" if len(value) > SHOWN_MAX else "")
    return repr(mask_text(cut))


def _header(row: list[str]) -> tuple[dict[int, str], dict[str, list[str]]]:
    """Columns by position, or the header's problems.

    Unknown cells are echoed (capped) only when the line is plainly a header, i.e. it names
    the pupil column: otherwise it is likely a pupil's row, the header line missing (a
    relation such as 家长 may still name a column; no pupil's name is 学生姓名).
    """
    columns: dict[int, str] = {}
    problems: list[str] = []
    unknown: list[int] = []
    for index, name in enumerate(row):
        key = name.strip().lower()
        if not key:
            continue
        field = _ALIASES.get(key)
        if field is None:
            unknown.append(index)
        elif field in columns.values():
            problems.append(f"column {index + 1}: column {shown(name)} given twice")
        else:
            columns[index] = field
    missing = [field for field in REQUIRED_COLUMNS if field not in columns.values()]
    if "pupil" in missing and unknown:
        places = ", ".join(str(i + 1) for i in unknown[:REPORTED_MAX])
        more = f" and {len(unknown) - REPORTED_MAX} more" if len(unknown) > REPORTED_MAX else ""
        problems.append(f"unknown columns {places}{more} and no pupil column (is the header "
                        f"line missing?)")
    else:
        problems += [f"column {i + 1}: unknown column {shown(row[i])}" for i in unknown]
    if len(problems) > REPORTED_MAX:
        problems = problems[:REPORTED_MAX] + [f"… and {len(problems) - REPORTED_MAX} more"]
    problems += [f"missing column {field!r}" for field in missing]
    if not any(f in columns.values() for f in ("phone", "email", "wechat_openid")):
        problems.append("no contact column (phone, email or wechat_openid)")
    return columns, ({"header": problems} if problems else {})


class _Errors(dict):
    """Errors by `rows.<n>.<column>`, at most REPORTED_MAX of them; the rest are counted.

    Whole-roster errors (key `rows`) are always reported.
    """

    def __init__(self) -> None:
        super().__init__()
        self.unreported = 0

    def add(self, key: str, message: str) -> None:
        if key in self or len(self) < REPORTED_MAX or "." not in key:
            self.setdefault(key, []).append(message)
        else:
            self.unreported += 1

    def close(self) -> dict[str, list[str]]:
        if self.unreported:
            self.setdefault("rows", []).append(
                f"{self.unreported} more error(s) not listed; fix those above first")
        return dict(self)


def from_csv(text: str) -> list[dict[str, Any]]:
    """Pupils from a CSV roster (UTF-8), or ValidationFailed naming `rows.<n>.<column>`."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ValidationFailed("the CSV is empty", {"header": ["the CSV is empty"]}) from None
    except csv.Error as exc:
        message = f"unreadable CSV: {shown(str(exc))}"
        raise ValidationFailed(message, {"header": [message]}) from None
    columns, header_errors = _header(header)
    if header_errors:
        raise ValidationFailed("; ".join(header_errors["header"]), header_errors)
    names = {field: header[index].strip() for index, field in columns.items()}
    pupils: dict[tuple[str, str | None], dict[str, Any]] = {}
    errors = _Errors()
    rows = 0
    try:
        for number, row in enumerate(reader, start=1):
            if not any(cell.strip() for cell in row):
                continue
            rows += 1
            if rows > ROWS_MAX:
                errors.add("rows", f"more than {ROWS_MAX} rows (guardians) in one class")
                break
            if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
                errors.add(f"rows.{number}", "more cells than columns")
            _take_row(number, row, columns, names, pupils, errors)
    except csv.Error as exc:
        errors.add(f"rows.{rows + 1}", f"unreadable CSV: {shown(str(exc))}")
    if not rows and not errors:
        errors.add("rows", "the CSV has a header but no rows")
    if len(pupils) > MAX_PUPILS:
        errors.add("rows", f"more than {MAX_PUPILS} pupils in one class")
    if errors or errors.unreported:
        found = errors.close()
        raise ValidationFailed(_describe(found), found)
    return [{"name": p["name"], "ref": p["ref"], "guardians": p["guardians"]}
            for p in pupils.values()]


def _take_row(number: int, row: list[str], columns: dict[int, str], names: dict[str, str],
              pupils: dict[tuple[str, str | None], dict[str, Any]], errors: _Errors) -> None:
    values = {field: (row[index].strip() if index < len(row) else "")
              for index, field in columns.items()}

    def fail(field: str, message: str) -> None:
        errors.add(f"rows.{number}.{names.get(field, field)}", message)

    too_long = [f for f, v in values.items() if len(v) > CELL_MAX]
    for field in too_long:
        fail(field, f"longer than {CELL_MAX} characters")
    if too_long:
        return
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
                              {"name": pupil_name, "ref": ref, "guardians": [], "rows": {}})
    first = pupil["rows"].get(guardian["name"])
    if first is not None:
        fail("guardian", f"this pupil already has this guardian (row {first})")
    elif len(pupil["guardians"]) >= MAX_GUARDIANS:
        fail("guardian", f"this pupil has more than {MAX_GUARDIANS} guardians")
    else:
        pupil["guardians"].append(guardian)
        pupil["rows"][guardian["name"]] = number


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


def class_pupils(repo: Any, school_id: Any, labels: Any) -> dict[str, list[str]]:
    """`{label: [pupil_id, ...]}` of the current rosters, labels matched by
    `class_label_key` (`五年级（2）班` finds `五年级(2)班`); a class with no roster: `[]`."""
    if not isinstance(school_id, str) or not 1 <= len(school_id) <= 64:
        raise ValidationFailed("school_id: a school id", {"school_id": ["a school id"]})
    if not isinstance(labels, list) or len(labels) > 60 or not all(
            isinstance(label, str) and 1 <= len(label) <= LABEL_MAX for label in labels):
        raise ValidationFailed("labels: a list of at most 60 class labels",
                               {"labels": ["a list of at most 60 class labels of 1-40 "
                                           "characters"]})
    found = {class_label_key(doc["label"]): doc for doc in repo.rosters_of(school_id, labels)}
    return {label: [p["pupil_id"] for p in found[class_label_key(label)]["pupils"]]
            if class_label_key(label) in found else [] for label in labels}
