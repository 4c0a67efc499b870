"""Bank reconciliation: a statement's lines against the payout lines sent to the bank.

A statement is CSV with a header row naming at least `reference` and `amount` (yuan, up to
two decimals, e.g. `1234.50`; a sign is ignored, since banks write payments out either
way; full-width digits and ￥ are read too) or `amount_fen`, at most MAX_FEN; `date`,
`payee` and `memo` are kept when present (their first 200 characters). A bad cell is a 422
naming its line and column (`line 3.amount`: "column 2 ('amount'): ...") that quotes at
most 40 characters of it: a bank's file may hold anything, thousands of digits included.
Each line is matched by reference, then amount:

- `matched`: a sent payout with that reference and amount; it is posted as paid
  (transit -> paid, one posting per statement and term) and its visits become `paid`,
  each announcing `funding.subsidy_paid` from its outbox (the write that marks it paid);
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
import unicodedata
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.contracts.funding import MAX_FEN
from services.funding import accounts as chart
from services.funding.ledger import Entry, Ledger
from services.funding.requests import Requests
from services.kit import clock
from services.kit.errors import Conflict, NotFound, ValidationFailed
from services.kit.outbox import add_events, event
from services.kit.pages import page, sort_key

MAX_LINES = 200_000
MAX_ERRORS = 50
LEASE_S = 600  # an import that has not finished by then is taken over by a re-import
REPORT_ITEMS = 200  # findings per kind in a JSON report; the rest via the findings list
BATCH = 1_000
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


PAID_FIELDS = {"school_id": 1, "district": 1, "term": 1, "amount_fen": 1, "tutor_id": 1}


def paid_event(accrual: dict[str, Any], stm_id: str, reference: str, now: str
               ) -> dict[str, Any]:
    """The data of `funding.subsidy_paid` for an accrual a statement just paid."""
    return {"visit_id": accrual["_id"], "school_id": accrual["school_id"],
            "district_id": accrual["district"], "term": accrual["term"],
            "amount_fen": int(accrual["amount_fen"]), "paid_at": now,
            "tutor_id": accrual["tutor_id"], "statement_id": stm_id, "reference": reference}


def _chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


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


def line_finding(stm_id: str, kind: str, line: dict[str, Any], payout: dict[str, Any] | None
                 ) -> dict[str, Any]:
    """The finding of one statement line."""
    return {"_id": f"{stm_id}:{line['line']:06d}", "statement_id": stm_id, "kind": kind,
            "line": line["line"], "reference": line["reference"],
            "statement_amount_fen": line["amount_fen"],
            "payout_amount_fen": int(payout["amount_fen"]) if payout else None,
            "tutor_id": payout["tutor_id"] if payout else None,
            "tutor_name": payout["tutor_name"] if payout else None,
            "date": line.get("date"), "payee": line.get("payee"), "note": line.get("memo"),
            "key": sort_key(f"{line['line']:06d}")}


def kind_of(stm_id: str, line: dict[str, Any], payout: dict[str, Any] | None,
            seen: set[str]) -> str:
    """What a statement line is, against our payout with its reference (module docs)."""
    if payout is None:
        return "unknown_reference"
    if line["reference"] in seen:
        return "duplicate_line"
    if payout["status"] == "paid" and payout.get("statement_id") != stm_id:
        return "already_paid"
    if payout["status"] not in ("sent", "paid"):
        return "not_sent"
    if int(payout["amount_fen"]) != line["amount_fen"]:
        return "amount_mismatch"
    return "matched"


def classify(stm_id: str, lines: list[dict[str, Any]], payouts: dict[str, dict[str, Any]]
             ) -> tuple[list[dict[str, Any]], list[str]]:
    """(a finding per statement line, the references that match a payout)."""
    findings: list[dict[str, Any]] = []
    candidates: list[str] = []
    seen: set[str] = set()
    for line in lines:
        payout = payouts.get(line["reference"])
        kind = kind_of(stm_id, line, payout, seen)
        if kind == "matched":
            candidates.append(line["reference"])
        seen.add(line["reference"])
        findings.append(line_finding(stm_id, kind, line, payout))
    return findings, candidates


class Reconciliation:
    def __init__(self, db: Database, ledger: Ledger, requests: Requests) -> None:
        self.statements = db.statements
        self.findings = db.statement_findings
        self.lines = db.payout_lines
        self.accruals = db.accruals
        self.ledger = ledger
        self.requests = requests

    def ensure_indexes(self) -> None:
        self.statements.create_index("district")  # single-field: see Ledger's indexes
        self.findings.create_index("statement_id")

    # -- import -------------------------------------------------------------------------
    def import_statement(self, district: str, sub: str, text: str, key: str | None = None
                         ) -> dict[str, Any]:
        """Reconcile a statement once: its id is its content's, so a retry (with the same
        Idempotency-Key, or none) finds it; the key bound to another file is refused."""
        lines = parse_statement(text)
        digest = hashlib.sha256(f"{district}\n{text}".encode()).hexdigest()[:24]
        self.requests.bind("statement", district, sub, key, f"stm_{digest}",
                           hashlib.sha256(text.encode()).hexdigest())
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
        payouts = self._payouts(district, refs)
        findings, candidates = classify(stm_id, lines, payouts)
        now = clock.stamp()
        matched = self._mark_lines_paid(stm_id, candidates, now)
        for finding in findings:  # lost a race with another statement for the same payout
            if finding["kind"] == "matched" and finding["reference"] not in matched:
                finding["kind"] = "already_paid"
        findings += self._not_on_statement(stm_id, district, set(refs))
        self._insert(findings)
        self._mark_visits_paid(stm_id, matched.values(), now)
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

    def _payouts(self, district: str, refs: list[str]) -> dict[str, dict[str, Any]]:
        """This district's payout lines with these references, by reference."""
        payouts: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(refs):
            for p in self.lines.find({"_id": {"$in": list(chunk)}},
                                     {"district": 1, "status": 1, "statement_id": 1,
                                      "amount_fen": 1, "tutor_id": 1, "tutor_name": 1}):
                if p["district"] == district:  # another district's reference is unknown here
                    payouts[p["_id"]] = p
        return payouts

    def _mark_lines_paid(self, stm_id: str, candidates: list[str], now: str
                         ) -> dict[str, dict[str, Any]]:
        """Sent payout lines matched by this statement become paid; answers those that did
        (this statement's, also from an earlier attempt), by reference."""
        # one update_many per 1,000 references: on nx-27017 nearly twice as fast as a
        # bulk_write of single updates (the statement line stays on the finding)
        for chunk in _chunks(candidates):
            self.lines.update_many({"_id": {"$in": list(chunk)}, "status": "sent"},
                                   {"$set": {"status": "paid", "statement_id": stm_id,
                                             "paid_at": now}})
        return {p["_id"]: p for p in self.lines.find(
            {"statement_id": stm_id}, {"term": 1, "amount_fen": 1, "visit_ids": 1})}

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

    def _mark_visits_paid(self, stm_id: str, matched: Any, now: str) -> None:
        """The visits of matched payout lines are paid (found by id: lines list them).

        Each accrual turns `paid` in one conditional write that also stages its
        `funding.subsidy_paid` in its outbox: a resumed import finds it paid already and
        stages nothing again. A bulk of single updates (each carries its own event), not
        one update_many."""
        reference = {v: p["_id"] for p in matched for v in p.get("visit_ids") or []}
        for chunk in _chunks(list(reference)):
            ops = [UpdateOne({"_id": acc["_id"], "status": "in_transit"}, add_events(
                {"$set": {"status": "paid", "paid_at": now, "updated_at": now}},
                event("funding.subsidy_paid", paid_event(acc, stm_id, reference[acc["_id"]],
                                                         now))))
                   for acc in self.accruals.find(
                       {"_id": {"$in": list(chunk)}, "status": "in_transit"}, PAID_FIELDS)]
            if ops:
                self.accruals.bulk_write(ops, ordered=False)

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
