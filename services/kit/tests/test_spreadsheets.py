"""The one guard against spreadsheet formula injection, for CSV and XLSX."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from services.kit.spreadsheets import is_dangerous, safe_cell, write_csv, write_xlsx

DANGEROUS = ["=1+2", "+1+2", "-1+2", "@SUM(A1)", "\t=1+2", "\r=1+2", "\n=1+2", "\tplain",
             "\rplain", "   =1+2", " \u3000+1", "＝1+2", "＋1", "－1", "＠SUM(A1)",
             "=cmd|' /C calc'!A0", "  ＝HYPERLINK(\"x\")"]
HARMLESS = ["plain", "老师 张", "a=b", "1-2 May", "", "-12.50", "+3", "-7", "12.5"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_each_dangerous_prefix_is_neutralised_in_csv(value):
    assert is_dangerous(value)
    assert safe_cell(value) == "'" + value
    text = write_csv(["name"], [[value]])
    (cell,) = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1]
    assert cell == "'" + value


@pytest.mark.parametrize("value", HARMLESS)
def test_harmless_text_and_plain_numbers_are_left_alone(value):
    assert not is_dangerous(value)
    assert safe_cell(value) == value


def test_numbers_stay_numbers_and_none_is_empty():
    assert safe_cell(-5) == -5 and safe_cell(2.5) == 2.5 and safe_cell(None) == ""
    text = write_csv(["a", "b", "c"], [[-5, 1_000_000, None]])
    assert text.startswith("\ufeff") and text.endswith("\r\n")
    assert text.lstrip("\ufeff").split("\r\n")[1] == "-5,1000000,"


def test_a_dangerous_header_is_guarded_too():
    assert write_csv(["=x"], []).lstrip("\ufeff") == "'=x\r\n"


def test_xlsx_writes_every_text_cell_as_data_and_numbers_as_numbers():
    row = [*DANGEROUS, "plain", -5, 2.5, 10**12, True, None]
    data = write_xlsx([("Sheet", [row])])
    sheet = load_workbook(io.BytesIO(data))["Sheet"]
    cells = list(sheet.iter_rows(min_row=1, max_row=1))[0]
    for cell, value in zip(cells, DANGEROUS, strict=False):
        assert cell.data_type == "s", (value, cell.data_type)
        # the text itself is kept, not altered (XML reads a CR back as LF)
        assert cell.value == value.replace("\r", "\n")
        assert cell.quotePrefix  # and Excel keeps it text when edited
    rest = cells[len(DANGEROUS):]
    assert (rest[0].value, rest[0].data_type, rest[0].quotePrefix) == ("plain", "s", False)
    assert [(c.value, c.data_type) for c in rest[1:5]] == [
        (-5, "n"), (2.5, "n"), (10**12, "n"), (True, "b")]
    assert all(c.data_type != "f" for r in sheet.iter_rows() for c in r)
