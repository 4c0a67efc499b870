"""Bank reconciliation: a statement's lines against the payout lines sent to the bank.

A statement is read by `statements.parse_statement` (CSV; a 422 names each bad line and
column). Each line is matched by reference, then amount:

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

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.funding import accounts as chart
from services.funding.ledger import Entry, Ledger
from services.funding.requests import Requests
from services.funding.statements import parse_statement
from services.kit import clock
from services.kit.errors import Conflict, NotFound
from services.kit.outbox import add_events, event
from services.kit.pages import page, sort_key

LEASE_S = 600  # an import that has not finished by then is taken over by a re-import
REPORT_ITEMS = 200  # findings per kind in a JSON report; the rest via the findings list
BATCH = 1_000


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
