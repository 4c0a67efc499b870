"""Files finance staff take away: the bank payout file, report and reconciliation exports.

CSV is RFC 4180 (CRLF, UTF-8 with a BOM so spreadsheet programs read the Chinese names);
XLSX is written with openpyxl in write-only mode so a term of 100,000 visits stays cheap.
Every table ends with a TOTAL row of its money columns. Text that a spreadsheet would run
as a formula (starting with = + - @) is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook

from services.funding.reports import SCHOOL_COLUMNS, SOURCE_COLUMNS, TUTOR_COLUMNS

BOM = "\ufeff"
PAYOUT_COLUMNS = ("reference", "payee_id", "payee_name", "term", "amount_fen", "amount_yuan",
                  "currency", "visits", "memo")
FINDING_COLUMNS = ("kind", "line", "reference", "statement_amount_fen", "payout_amount_fen",
                   "tutor_id", "tutor_name", "date", "payee", "note")
REPORT_TABLES = {"source": ("by_source", SOURCE_COLUMNS),
                 "school": ("by_school", SCHOOL_COLUMNS),
                 "tutor": ("by_tutor", TUTOR_COLUMNS)}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def yuan(fen: int) -> str:
    """Fen as a yuan amount with two decimals, exactly (no floats)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return "" if value is None else value


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_safe(row.get(c)) for c in columns])
    return BOM + out.getvalue()


def with_total(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[dict[str, Any]]:
    """The rows and a TOTAL row summing every `_fen` and count column."""
    total: dict[str, Any] = {columns[0]: "TOTAL"}
    for c in columns[1:]:
        if c.endswith("_fen") or c in ("visits", "students", "unfunded_visits", "hours"):
            total[c] = sum(r.get(c) or 0 for r in rows)
            if c == "hours":
                total[c] = round(total[c], 2)
    return [*rows, total]


def payout_file(run: dict[str, Any], lines: Sequence[dict[str, Any]]) -> str:
    """The bank payout file: one line per reference; the same lines give the same bytes."""
    rows = [{"reference": line["_id"], "payee_id": line["tutor_id"],
             "payee_name": line["tutor_name"], "term": line["term"],
             "amount_fen": int(line["amount_fen"]), "amount_yuan": yuan(int(line["amount_fen"])),
             "currency": "CNY", "visits": line["visits"],
             "memo": f"科普 tutor subsidy {run['code']}"} for line in lines]
    return csv_text(PAYOUT_COLUMNS, rows)


def report_csv(report: dict[str, Any], by: str) -> str:
    key, columns = REPORT_TABLES[by]
    return csv_text(columns, with_total(report[key], columns))


def report_xlsx(report: dict[str, Any]) -> bytes:
    book = Workbook(write_only=True)
    summary = book.create_sheet("Summary")
    summary.append(["district", report["district"]])
    summary.append(["term", report["term"]])
    summary.append(["generated_at", report["generated_at"]])
    for name, value in report["totals"].items():
        summary.append([name, value])
    for name, value in report["ledger"].items():
        summary.append([f"ledger.{name}", value])
    for by, title in (("source", "By source"), ("school", "By school"), ("tutor", "By tutor")):
        key, columns = REPORT_TABLES[by]
        sheet = book.create_sheet(title)
        sheet.append(list(columns))
        for row in with_total(report[key], columns):
            sheet.append([_safe(row.get(c)) for c in columns])
    return _save(book)


def statement_rows(findings: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for kind in findings for row in findings[kind]]


def statement_csv(findings: dict[str, list[dict[str, Any]]]) -> str:
    return csv_text(FINDING_COLUMNS, statement_rows(findings))


def statement_xlsx(statement: dict[str, Any], findings: dict[str, list[dict[str, Any]]]
                   ) -> bytes:
    book = Workbook(write_only=True)
    summary = book.create_sheet("Summary")
    for name in ("statement_id", "district", "lines", "total_fen", "matched_fen",
                 "created_at", "reconciled_at"):
        summary.append([name, statement.get(name)])
    for kind, count in sorted((statement.get("counts") or {}).items()):
        summary.append([f"count.{kind}", count])
    sheet = book.create_sheet("Findings")
    sheet.append(list(FINDING_COLUMNS))
    for row in statement_rows(findings):
        sheet.append([_safe(row.get(c)) for c in FINDING_COLUMNS])
    return _save(book)


def _save(book: Workbook) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
