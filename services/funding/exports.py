"""Files finance staff take away: the bank payout file, report and reconciliation exports.

CSV is RFC 4180 (CRLF, UTF-8 with a BOM so spreadsheet programs read the Chinese names);
XLSX is written with openpyxl in write-only mode so a term of 100,000 visits stays cheap.
Every table ends with a TOTAL row of its money columns. Every cell of every file goes
through kit.spreadsheets, so a name or memo a spreadsheet would run as a formula is data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from services.funding.reports import SCHOOL_COLUMNS, SOURCE_COLUMNS, TUTOR_COLUMNS
from services.kit.spreadsheets import XLSX_TYPE, write_csv, write_xlsx

__all__ = ["XLSX_TYPE", "csv_text", "payout_file", "report_csv", "report_xlsx",
           "statement_csv", "statement_xlsx", "with_total", "yuan"]
PAYOUT_COLUMNS = ("reference", "payee_id", "payee_name", "term", "amount_fen", "amount_yuan",
                  "currency", "visits", "memo")
FINDING_COLUMNS = ("kind", "line", "reference", "statement_amount_fen", "payout_amount_fen",
                   "tutor_id", "tutor_name", "date", "payee", "note")
REPORT_TABLES = {"source": ("by_source", SOURCE_COLUMNS),
                 "school": ("by_school", SCHOOL_COLUMNS),
                 "tutor": ("by_tutor", TUTOR_COLUMNS)}


def yuan(fen: int) -> str:
    """Fen as a yuan amount with two decimals, exactly (no floats)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def table(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Iterable[list[Any]]:
    """The rows as lists in column order (missing values empty)."""
    return ([row.get(c) for c in columns] for row in rows)


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    return write_csv(columns, table(columns, rows))


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
    summary: list[list[Any]] = [["district", report["district"]], ["term", report["term"]],
                                ["generated_at", report["generated_at"]]]
    summary += [[name, value] for name, value in report["totals"].items()]
    summary += [[f"ledger.{name}", value] for name, value in report["ledger"].items()]
    sheets: list[tuple[str, Iterable[Sequence[Any]]]] = [("Summary", summary)]
    for by, title in (("source", "By source"), ("school", "By school"), ("tutor", "By tutor")):
        key, columns = REPORT_TABLES[by]
        sheets.append((title, [list(columns), *table(columns, with_total(report[key],
                                                                          columns))]))
    return write_xlsx(sheets)


def statement_rows(findings: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for kind in findings for row in findings[kind]]


def statement_csv(findings: dict[str, list[dict[str, Any]]]) -> str:
    return csv_text(FINDING_COLUMNS, statement_rows(findings))


def statement_xlsx(statement: dict[str, Any], findings: dict[str, list[dict[str, Any]]]
                   ) -> bytes:
    summary = [[name, statement.get(name)] for name in (
        "statement_id", "district", "lines", "total_fen", "matched_fen", "created_at",
        "reconciled_at")]
    summary += [[f"count.{kind}", count]
                for kind, count in sorted((statement.get("counts") or {}).items())]
    rows = [list(FINDING_COLUMNS), *table(FINDING_COLUMNS, statement_rows(findings))]
    return write_xlsx([("Summary", summary), ("Findings", rows)])
