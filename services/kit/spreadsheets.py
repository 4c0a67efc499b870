"""CSV and XLSX exports that a spreadsheet program opens as data, never as formulas.

Spreadsheet programs run a cell that starts with `=`, `+`, `-` or `@` as a formula (a
tutor named `=HYPERLINK(...)` would become a link, `=cmd|...` a DDE call), and many
also after a leading tab, CR, LF or spaces, and for the full-width `＝＋－＠` an IME
types. So every export goes through this one guard (OWASP, "CSV injection"):

- CSV: a dangerous text cell gets a leading apostrophe (`'=1+2`), which spreadsheets show
  as text and hide; numbers, and text that is just a plain number (`-12.50`), stay as
  they are, so amounts still read as amounts.
- XLSX: every text cell is written as an inline string (data type `s`), never a formula;
  a dangerous one also carries Excel's quote prefix, so editing it keeps it text. Numbers
  stay numbers.

Write files with `write_csv` and `write_xlsx`; they apply the guard to every cell.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

BOM = "\ufeff"
# what a spreadsheet may read as the start of a formula, after any leading whitespace
FORMULA_STARTS = frozenset("=+-@＝＋－＠")
# what makes a cell dangerous even before a formula sign (Excel skips these)
LEADING_CONTROLS = frozenset("\t\r\n")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def is_dangerous(value: Any) -> bool:
    """Would a spreadsheet program read this text as (the start of) a formula?"""
    if not isinstance(value, str) or not value:
        return False
    if _PLAIN_NUMBER.fullmatch(value):
        return False
    if value[0] in LEADING_CONTROLS:
        return True
    return value.lstrip()[:1] in FORMULA_STARTS


def safe_cell(value: Any) -> Any:
    """A CSV cell: dangerous text with a leading apostrophe, None as empty, the rest as is."""
    if value is None:
        return ""
    if is_dangerous(value):
        return "'" + value
    return value


def write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], bom: bool = True) -> str:
    """RFC 4180 CSV (CRLF) with every cell guarded; a UTF-8 BOM so spreadsheet programs
    read Chinese names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return (BOM if bom else "") + out.getvalue()


def xlsx_cell(sheet: WriteOnlyWorksheet, value: Any) -> Cell | None:
    """A write-only cell holding `value` as data: text as a string, never a formula."""
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return WriteOnlyCell(sheet, value=value)
    text = value if isinstance(value, str) else str(value)
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"  # openpyxl makes any text starting with "=" a formula otherwise
    if is_dangerous(text):
        cell.quotePrefix = True
    return cell


def write_xlsx(sheets: Iterable[tuple[str, Iterable[Sequence[Any]]]]) -> bytes:
    """A workbook (write-only, so large exports stay cheap) of (title, rows) sheets, every
    cell written as data."""
    book = Workbook(write_only=True)
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append([xlsx_cell(sheet, v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
