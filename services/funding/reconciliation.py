"""Bank reconciliation: a statement's lines against the payout lines sent to the bank.

A statement is CSV with a header row naming at least `reference` and `amount` (yuan, up to
two decimals, e.g. `1234.50`; a sign is ignored, since banks write payments out either
way) or `amount_fen`; `date`, `payee` and `memo` are kept when present. Each line is
matched by reference, then amount:

- `matched`: a sent payout with that reference and amount; it is posted as paid
  (transit -> paid, one posting per statement and term) and its visits become `paid`;
- `amount_mismatch`: the reference is ours but the amount differs; nothing is posted;
- `unknown_reference`: no payout of this district has that reference;
- `duplicate_line`: the reference appeared earlier in the same statement;
- `already_paid`: a previous statement already matched it;
- `not_sent`: the payout exists but its run was never exported (or was discarded);
- `not_on_statement`: a sent payout no line of this statement mentions (still unpaid).

The statement's id is a hash of district and content, so importing the same file again
answers the first report (409 while the first import is still running); an import that
died half-way resumes when the file is imported again after its lease (every step is a
conditional or keyed write). Matching reads payouts in batches of 1,000 by
reference into a dict and writes with bulk operations, so a term of 100,000 lines is a
few dozen round trips, not 100,000.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.funding import accounts as chart
from services.funding.ledger import Entry, Ledger
from services.funding.pages import page, sort_key
from services.kit import clock
from services.kit.errors import Conflict, NotFound, ValidationFailed

MAX_LINES = 200_000
MAX_ERRORS = 50
LEASE_S = 600  # an import that has not finished by then is taken over by a re-import
REPORT_ITEMS = 200  # findings per kind in a JSON report; the rest via the findings list
BATCH = 1_000
ALIASES = {"reference": ("reference", "ref", "参考号", "交易参考号"),
           "amount": ("amount", "金额", "交易金额"), "amount_fen": ("amount_fen",),
           "date": ("date", "日期", "交易日期"), "payee": ("payee", "收款人", "name"),
           "memo": ("memo", "摘要", "description")}
_YUAN = re.compile(r"^[+-]?\d+(\.\d{1,2})?$")


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def parse_statement(text: str) -> list[dict[str, Any]]:
    """Statement lines, or ValidationFailed naming each bad line and field."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = next(reader, None)
    if not header:
        raise ValidationFailed("the statement is empty", {"body": ["no header row"]})
    names = [h.strip().lower() for h in header]
    column: dict[str, int] = {}
    for field, aliases in ALIASES.items():
        for alias in aliases:
            if alias in names:
                column[field] = names.index(alias)
                break
    missing = [f for f in ("reference",) if f not in column]
    if "amount" not in column and "amount_fen" not in column:
        missing.append("amount")
    if missing:
        raise ValidationFailed(f"the statement header lacks: {', '.join(missing)}",
                               {"header": [f"needs a '{m}' column" for m in missing]})
    lines: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    for n, row in enumerate(reader, start=1):
        if not any(cell.strip() for cell in row):
            continue
        if len(lines) >= MAX_LINES:
            raise ValidationFailed(f"a statement has at most {MAX_LINES} lines",
                                   {"body": [f"more than {MAX_LINES} lines"]})

        def cell(field: str, row: list[str] = row) -> str:
            index = column.get(field)
            return row[index].strip() if index is not None and index < len(row) else ""

        reference = cell("reference")
        if not reference:
            errors.setdefault(f"line {n}.reference", []).append("missing")
        amount = _amount(cell("amount_fen"), cell("amount"))
        if isinstance(amount, str):
            errors.setdefault(f"line {n}.amount", []).append(amount)
        if len(errors) >= MAX_ERRORS:
            break
        lines.append({"line": n, "reference": reference, "amount_fen": amount,
                      "date": cell("date") or None, "payee": cell("payee") or None,
                      "memo": cell("memo") or None})
    if errors:
        raise ValidationFailed(f"{len(errors)} bad statement field(s), first at "
                               f"{next(iter(errors))}", errors)
    if not lines:
        raise ValidationFailed("the statement has no lines", {"body": ["no statement lines"]})
    return lines


def _amount(fen_text: str, yuan_text: str) -> int | str:
    """Fen, or a message saying what is wrong with the amount."""
    if fen_text:
        if not re.fullmatch(r"[+-]?\d+", fen_text):
            return f"amount_fen {fen_text!r} is not a whole number of fen"
        value = abs(int(fen_text))
    else:
        text = yuan_text.replace(",", "").replace("¥", "").replace("￥", "").strip()
        if not _YUAN.match(text):
            return f"{yuan_text!r} is not an amount in yuan with at most two decimals"
        try:
            value = abs(int(Decimal(text) * 100))
        except InvalidOperation:  # pragma: no cover - the pattern already excludes these
            return f"{yuan_text!r} is not a number"
    return value if value > 0 else "the amount is zero"


class Reconciliation:
    def __init__(self, db: Database, ledger: Ledger) -> None:
        self.statements = db.statements
        self.findings = db.statement_findings
        self.lines = db.payout_lines
        self.accruals = db.accruals
        self.ledger = ledger

    def ensure_indexes(self) -> None:
        self.statements.create_index("district")  # single-field: see Ledger's indexes
        self.findings.create_index("statement_id")

    # -- import -------------------------------------------------------------------------
    def import_statement(self, district: str, sub: str, text: str) -> dict[str, Any]:
        lines = parse_statement(text)
        digest = hashlib.sha256(f"{district}\n{text}".encode()).hexdigest()[:24]
        now = clock.stamp()
        doc = {"_id": f"stm_{digest}", "district": district, "state": "importing",
               "lines": len(lines), "total_fen": sum(line["amount_fen"] for line in lines),
               "counts": {}, "matched_fen": 0, "imported_by": sub, "created_at": now,
               "lease_until": clock.later(LEASE_S), "key": sort_key(now, f"stm_{digest}")}
        try:
            self.statements.insert_one(doc)
        except DuplicateKeyError:
            existing = self.statements.find_one({"_id": doc["_id"]})
            assert existing is not None
            if existing["state"] == "reconciled":
                return existing
            taken = self.statements.find_one_and_update(  # its importer died: carry on
                {"_id": doc["_id"], "state": "importing", "lease_until": {"$lt": now}},
                {"$set": {"lease_until": clock.later(LEASE_S)}}, return_document=True)
            if taken is None:
                raise Conflict(f"statement {doc['_id']} is being reconciled right now; "
                               f"GET /v1/funding/statements/{doc['_id']} shows it when done",
                               code="statement-in-progress") from None
            doc = taken
        return self._reconcile(doc, lines)

    def _reconcile(self, stm: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
        stm_id, district = stm["_id"], stm["district"]
        refs = list(dict.fromkeys(line["reference"] for line in lines))
        payouts: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(refs):
            for p in self.lines.find({"_id": {"$in": list(chunk)}},
                                     {"district": 1, "status": 1, "statement_id": 1,
                                      "amount_fen": 1, "tutor_id": 1, "tutor_name": 1}):
                if p["district"] == district:  # another district's reference is unknown here
                    payouts[p["_id"]] = p
        findings: list[dict[str, Any]] = []
        candidates: dict[str, dict[str, Any]] = {}
        seen: set[str] = set()
        for line in lines:
            ref = line["reference"]
            p = payouts.get(ref)
            if p is None:
                kind = "unknown_reference"
            elif ref in seen:
                kind = "duplicate_line"
            elif p["status"] == "paid" and p.get("statement_id") != stm_id:
                kind = "already_paid"
            elif p["status"] not in ("sent", "paid"):
                kind = "not_sent"
            elif int(p["amount_fen"]) != line["amount_fen"]:
                kind = "amount_mismatch"
            else:
                kind = "matched"
                candidates[ref] = line
            seen.add(ref)
            findings.append(self._finding(stm_id, kind, line, p))
        now = clock.stamp()
        # one update_many per 1,000 references: on nx-27017 nearly twice as fast as a
        # bulk_write of single updates (the statement line stays on the finding)
        for chunk in _chunks(list(candidates)):
            self.lines.update_many({"_id": {"$in": list(chunk)}, "status": "sent"},
                                   {"$set": {"status": "paid", "statement_id": stm_id,
                                             "paid_at": now}})
        matched = {p["_id"]: p for p in self.lines.find(
            {"statement_id": stm_id}, {"term": 1, "amount_fen": 1, "visit_ids": 1})}
        for finding in findings:  # lost a race with another statement for the same payout
            if finding["kind"] == "matched" and finding["reference"] not in matched:
                finding["kind"] = "already_paid"
        findings += self._not_on_statement(stm_id, district, set(refs))
        self._insert(findings)
        self._mark_visits_paid(matched.values(), now)
        matched_fen = self._post_payments(stm, matched.values())
        counts: dict[str, int] = defaultdict(int)
        for finding in findings:
            counts[finding["kind"]] += 1
        done = self.statements.find_one_and_update(
            {"_id": stm_id},
            {"$set": {"state": "reconciled", "counts": dict(counts), "matched_fen": matched_fen,
                      "reconciled_at": clock.stamp()}, "$unset": {"lease_until": ""}},
            return_document=True)
        assert done is not None
        return done

    @staticmethod
    def _finding(stm_id: str, kind: str, line: dict[str, Any], payout: dict[str, Any] | None
                 ) -> dict[str, Any]:
        return {"_id": f"{stm_id}:{line['line']:06d}", "statement_id": stm_id, "kind": kind,
                "line": line["line"], "reference": line["reference"],
                "statement_amount_fen": line["amount_fen"],
                "payout_amount_fen": int(payout["amount_fen"]) if payout else None,
                "tutor_id": payout["tutor_id"] if payout else None,
                "tutor_name": payout["tutor_name"] if payout else None,
                "date": line.get("date"), "payee": line.get("payee"), "note": line.get("memo"),
                "key": sort_key(f"{line['line']:06d}")}

    def _not_on_statement(self, stm_id: str, district: str, refs: set[str]
                          ) -> list[dict[str, Any]]:
        out = []
        for p in self.lines.find({"district": district, "status": "sent"}):
            if p["_id"] in refs:
                continue
            out.append({"_id": f"{stm_id}:p:{p['_id']}", "statement_id": stm_id,
                        "kind": "not_on_statement", "line": None, "reference": p["_id"],
                        "statement_amount_fen": None, "payout_amount_fen": int(p["amount_fen"]),
                        "tutor_id": p["tutor_id"], "tutor_name": p["tutor_name"],
                        "date": None, "payee": None, "note": f"run {p['run_id']}",
                        "key": sort_key("p", p["_id"])})
        return out

    def _insert(self, findings: list[dict[str, Any]]) -> None:
        for chunk in _chunks(findings, 5_000):
            try:
                self.findings.insert_many(list(chunk), ordered=False)
            except BulkWriteError as exc:
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        # a resumed import may have classified a line differently the first time
        for chunk in _chunks([f for f in findings if f["kind"] == "already_paid"], BATCH):
            self.findings.update_many({"_id": {"$in": [f["_id"] for f in chunk]}},
                                      {"$set": {"kind": "already_paid"}})

    def _mark_visits_paid(self, matched: Any, now: str) -> None:
        """The visits of matched payout lines are paid (found by id: lines list them)."""
        visit_ids = [v for p in matched for v in p.get("visit_ids") or []]
        for chunk in _chunks(visit_ids):
            self.accruals.update_many({"_id": {"$in": list(chunk)}, "status": "in_transit"},
                                      {"$set": {"status": "paid", "paid_at": now,
                                                "updated_at": now}})

    def _post_payments(self, stm: dict[str, Any], matched: Any) -> int:
        by_term: dict[str, int] = defaultdict(int)
        for p in matched:
            by_term[p["term"]] += int(p["amount_fen"])
        for term, amount in sorted(by_term.items()):
            if amount:
                self.ledger.post(f"payment:{stm['_id']}:{term}",
                                 [Entry(chart.transit(stm["district"], term), -amount),
                                  Entry(chart.paid(stm["district"], term), amount)],
                                 kind="payment", category="payment", district=stm["district"],
                                 memo=f"bank statement {stm['_id']}", actor=stm["imported_by"],
                                 refs={"statement_id": stm["_id"]})
        return sum(by_term.values())

    # -- reading ------------------------------------------------------------------------
    def get(self, district: str, statement_id: str) -> dict[str, Any]:
        doc = self.statements.find_one({"_id": statement_id, "district": district})
        if doc is None:
            raise NotFound(f"statement {statement_id} not found", code="statement-not-found")
        return doc

    def list(self, district: str, query: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                                   str | None]:
        return page(self.statements, {"district": district}, query.get("limit", 50),
                    query.get("cursor"))

    def findings_page(self, district: str, statement_id: str, query: dict[str, Any]
                      ) -> tuple[list[dict[str, Any]], str | None]:
        self.get(district, statement_id)
        flt: dict[str, Any] = {"statement_id": statement_id}
        if query.get("kind"):
            flt["kind"] = query["kind"]
        return page(self.findings, flt, query.get("limit", 50), query.get("cursor"))

    def all_findings(self, statement_id: str, per_kind: int | None = None
                     ) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """Findings grouped by kind (at most `per_kind` each) and the kinds cut short."""
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        truncated: set[str] = set()
        for f in self.findings.find({"statement_id": statement_id}).sort("key", ASCENDING):
            bucket = grouped[f["kind"]]
            if per_kind is not None and len(bucket) >= per_kind:
                truncated.add(f["kind"])
                continue
            bucket.append(finding_view(f))
        return dict(grouped), sorted(truncated)


def finding_view(f: dict[str, Any]) -> dict[str, Any]:
    return {k: f.get(k) for k in ("kind", "line", "reference", "statement_amount_fen",
                                  "payout_amount_fen", "tutor_id", "tutor_name", "date",
                                  "payee", "note")}


def statement_view(doc: dict[str, Any], findings: dict[str, list[dict[str, Any]]] | None = None,
                   truncated: list[str] | None = None) -> dict[str, Any]:
    out = {"statement_id": doc["_id"]}
    for name in ("district", "state", "lines", "total_fen", "counts", "matched_fen",
                 "imported_by", "created_at", "reconciled_at"):
        out[name] = doc.get(name)
    if findings is not None:
        out["findings"] = findings
        out["truncated"] = truncated or []
    return out
