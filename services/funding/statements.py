"""A bank statement as Kepu reads it: CSV lines of reference and amount, or a 422 naming
each bad line and column.

The header names at least `reference` and `amount` (yuan, up to two decimals, e.g.
`1234.50`; a sign is ignored, since banks write payments out either way; full-width digits
and ￥ are read too) or `amount_fen`, at most MAX_FEN; `date`, `payee` and `memo` are kept
when present (their first 200 characters). A bad cell is a 422 naming its line and column
(`line 3.amount`: "column 2 ('amount'): ...") that quotes at most 40 characters of it: a
bank's file may hold anything, thousands of digits included.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from services.contracts.funding import MAX_FEN
from services.kit.errors import ValidationFailed

MAX_LINES = 200_000
MAX_ERRORS = 50
ALIASES = {"reference": ("reference", "ref", "参考号", "交易参考号"),
           "amount": ("amount", "金额", "交易金额"), "amount_fen": ("amount_fen",),
           "date": ("date", "日期", "交易日期"), "payee": ("payee", "收款人", "name"),
           "memo": ("memo", "摘要", "description")}
_YUAN = re.compile(r"[+-]?(?P<whole>[0-9]+)(?:\.(?P<cents>[0-9]{1,2}))?")
_FEN = re.compile(r"[+-]?[0-9]+")
MAX_DIGITS = len(str(MAX_FEN))  # digits of the largest amount in fen, leading zeros aside
ECHO = 40  # characters of a cell an error message quotes
MAX_REFERENCE = 100
MAX_KEPT = 200  # characters of date, payee and memo kept on a finding


def parse_statement(text: str) -> list[dict[str, Any]]:
    """Statement lines, or ValidationFailed naming each bad line and column.

    Errors name the cell (`line 3.amount`, and the column's number and header) and echo
    at most ECHO characters of it: a statement is a bank's file, cells can be anything.
    """
    rows = _rows(text)
    header = next(rows, None)
    if not header:
        raise ValidationFailed("the statement is empty", {"body": ["no header row"]})
    column = _columns(header)
    lines: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for n, row in enumerate(rows, start=1):
        if not any(cell.strip() for cell in row):
            continue
        if len(lines) >= MAX_LINES:
            raise ValidationFailed(f"a statement has at most {MAX_LINES} lines",
                                   {"body": [f"more than {MAX_LINES} lines"]})
        lines.append(_line(n, row, header, column, errors))
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise ValidationFailed(f"{len(errors)} bad statement field(s), first at "
                               f"{next(iter(errors))}", errors)
    if not lines:
        raise ValidationFailed("the statement has no lines", {"body": ["no statement lines"]})
    return lines


def echo(text: str) -> str:
    """A cell as an error message may quote it: at most ECHO characters, and its length."""
    if len(text) <= ECHO:
        return repr(text)
    return f"{text[:ECHO]!r}... ({len(text)} characters)"


def _rows(text: str) -> Iterator[list[str]]:
    """The CSV rows; a row the csv module cannot read is a 422 naming its line."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    n = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            where = f"line {n}" if n else "header"
            raise ValidationFailed(f"{where}: not readable as CSV ({exc})",
                                   {where: [f"not readable as CSV: {exc}"]}) from None
        n += 1
        yield row


def _columns(header: list[str]) -> dict[str, int]:
    """Which column holds each field; ValidationFailed when reference or amount is missing."""
    names = [h.strip().lower() for h in header]
    column: dict[str, int] = {}
    for field, aliases in ALIASES.items():
        found = next((names.index(a) for a in aliases if a in names), None)
        if found is not None:
            column[field] = found
    missing = [f for f in ("reference",) if f not in column]
    if "amount" not in column and "amount_fen" not in column:
        missing.append("amount")
    if missing:
        raise ValidationFailed(f"the statement header lacks: {', '.join(missing)}",
                               {"header": [f"needs a '{m}' column" for m in missing]})
    return column


def _line(n: int, row: list[str], header: list[str], column: dict[str, int],
          errors: dict[str, list[str]]) -> dict[str, Any]:
    """One statement line; what is wrong with it goes into `errors` by `line n.field`."""
    def cell(field: str) -> str:
        index = column.get(field)
        return row[index].strip() if index is not None and index < len(row) else ""

    def where(field: str) -> str:
        index = column[field]
        return f"column {index + 1} ({echo(header[index].strip())})"

    reference = cell("reference")
    if not reference:
        errors.setdefault(f"line {n}.reference", []).append(f"{where('reference')}: missing")
    elif len(reference) > MAX_REFERENCE:
        errors.setdefault(f"line {n}.reference", []).append(
            f"{where('reference')}: {echo(reference)} is longer than {MAX_REFERENCE} "
            "characters")
    # the column the amount was read from: amount_fen when it has a value or is the only one
    used = "amount_fen" if cell("amount_fen") or "amount" not in column else "amount"
    amount = _amount(cell("amount_fen"), cell("amount"))
    if isinstance(amount, str):
        errors.setdefault(f"line {n}.amount", []).append(f"{where(used)}: {amount}")
    return {"line": n, "reference": reference, "amount_fen": amount,
            "date": cell("date")[:MAX_KEPT] or None, "payee": cell("payee")[:MAX_KEPT] or None,
            "memo": cell("memo")[:MAX_KEPT] or None}


def _amount(fen_text: str, yuan_text: str) -> int | str:
    """Fen, or a message saying what is wrong with the amount (quoting at most ECHO chars).

    Digits are counted before any conversion: a cell of thousands of digits is refused as
    too large, never handed to int() (which refuses over 4,300 digits) or to BSON.
    """
    if not fen_text and not yuan_text:
        return "missing"
    if fen_text:
        text = unicodedata.normalize("NFKC", fen_text)
        if not _FEN.fullmatch(text):
            return f"{echo(fen_text)} is not a whole number of fen"
        digits = text.lstrip("+-").lstrip("0")
        value = int(digits or "0") if len(digits) <= MAX_DIGITS else MAX_FEN + 1
    else:
        text = unicodedata.normalize("NFKC", yuan_text)
        text = text.replace(",", "").replace("¥", "").strip()
        match = _YUAN.fullmatch(text)
        if not match:
            return f"{echo(yuan_text)} is not an amount in yuan with at most two decimals"
        whole = match["whole"].lstrip("0")
        cents = (match["cents"] or "").ljust(2, "0")
        value = (int(whole or "0") * 100 + int(cents) if len(whole) <= MAX_DIGITS - 2
                 else MAX_FEN + 1)
    if value > MAX_FEN:
        return f"{echo(fen_text or yuan_text)} is more than {MAX_FEN // 100} yuan"
    return value if value > 0 else "the amount is zero"
