"""Payout runs: approved subsidies gathered into a bank payout file, with maker-checker.

A run is made for one district and term by one finance user (`created_by`, the JWT
`sub`): it claims every approved accrual not yet in a run (a conditional update per
accrual, so two runs never share one) and writes one line per tutor with its own bank
reference. Open clawbacks of the same term are netted into the tutor's line; a tutor
whose clawbacks exceed what is owed gets no line this time.

States: `building` -> `draft` -> `approved` (by someone other than the creator) ->
`exporting` -> `exported`. Export posts payable -> transit per line (in chunked postings
with ids `payout:<run>:<chunk>`, so a crashed export resumes without paying twice) and
freezes the run: the file is rendered from lines that no longer change, and its SHA-256
is kept on the run. Before export a run can be discarded, which releases its accruals.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.funding import accounts as chart
from services.funding import exports
from services.funding.ledger import Entry, Ledger
from services.funding.requests import Requests
from services.kit import clock
from services.kit.errors import Conflict, Forbidden, NotFound
from services.kit.ids import new_id
from services.kit.pages import page, sort_key

BUILDING, DRAFT, APPROVED, EXPORTING, EXPORTED = (
    "building", "draft", "approved", "exporting", "exported")
DISCARDED, FAILED = "discarded", "failed"
CHUNK = 500


class Payouts:
    def __init__(self, db: Database, ledger: Ledger, requests: Requests) -> None:
        self.runs = db.payout_runs
        self.lines = db.payout_lines
        self.accruals = db.accruals
        self.ledger = ledger
        self.requests = requests

    def ensure_indexes(self) -> None:
        for name in ("district", "state"):  # single-field: see Ledger's indexes
            self.runs.create_index(name)
        for name in ("run_id", "district", "status", "statement_id"):
            self.lines.create_index(name)

    # -- reading ------------------------------------------------------------------------
    def get(self, district: str, run_id: str) -> dict[str, Any]:
        run = self.runs.find_one({"_id": run_id, "district": district})
        if run is None:
            raise NotFound(f"payout run {run_id} not found", code="payout-run-not-found")
        return run

    def list(self, district: str, query: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                                   str | None]:
        flt: dict[str, Any] = {"district": district}
        for name in ("term", "state"):
            if query.get(name):
                flt[name] = query[name]
        return page(self.runs, flt, query.get("limit", 50), query.get("cursor"))

    def list_lines(self, district: str, run_id: str, query: dict[str, Any]
                   ) -> tuple[list[dict[str, Any]], str | None]:
        self.get(district, run_id)
        flt: dict[str, Any] = {"run_id": run_id}
        if query.get("status"):
            flt["status"] = query["status"]
        return page(self.lines, flt, query.get("limit", 50), query.get("cursor"))

    # -- making a run -------------------------------------------------------------------
    def create(self, district: str, term: str, sub: str, note: str | None,
               key: str | None = None) -> dict[str, Any]:
        """Build a run of the term's approved subsidies; a retry of the same request (the
        same Idempotency-Key) answers the run the first attempt made, in whatever state."""
        run_id = self.requests.bind("payout_run", district, sub, key, new_id("run"),
                                    {"term": term, "note": note})
        now = clock.stamp()
        run = {"_id": run_id, "code": "KP" + run_id[-10:].upper(), "district": district,
               "term": term, "state": BUILDING, "note": note, "lines": 0, "visits": 0,
               "total_fen": 0, "stale": False, "created_by": sub, "created_at": now,
               "key": sort_key(now, run_id)}
        try:
            self.runs.insert_one(run)
        except DuplicateKeyError:
            return self.get(district, run_id)
        return self._build(run)

    def _build(self, run: dict[str, Any]) -> dict[str, Any]:
        """Claim the term's approved accruals and clawbacks, write a line per tutor paid."""
        run_id, district, term = run["_id"], run["district"], run["term"]
        claim = {"district": district, "term": term, "run_id": None}
        self.accruals.update_many({**claim, "status": "approved"}, {"$set": {"run_id": run_id}})
        self.accruals.update_many({**claim, "status": "clawback_due"},
                                  {"$set": {"run_id": run_id}})
        tutors: dict[str, dict[str, Any]] = {}
        for acc in self.accruals.find({"run_id": run_id}, {"tutor_id": 1, "tutor_name": 1,
                                                           "amount_fen": 1, "status": 1}):
            t = tutors.setdefault(acc["tutor_id"], {"name": acc["tutor_name"], "pay": 0,
                                                    "claw": 0, "visits": 0, "ids": []})
            t["ids"].append(acc["_id"])
            if acc["status"] == "approved":
                t["pay"] += int(acc["amount_fen"])
                t["visits"] += 1
                t["name"] = acc["tutor_name"]
            elif acc["status"] == "clawback_due":
                t["claw"] += int(acc["amount_fen"])
        short = [tid for tid, t in tutors.items() if t["pay"] - t["claw"] <= 0]
        if short:
            self.accruals.update_many({"run_id": run_id, "tutor_id": {"$in": short},
                                       "status": {"$in": ["approved", "clawback_due"]}},
                                      {"$set": {"run_id": None}})
        paying = sorted(tid for tid in tutors if tid not in short)
        if not paying:
            self.runs.delete_one({"_id": run_id, "state": BUILDING})
            raise Conflict(f"nothing to pay in {term}: no approved subsidies outside a run",
                           {"term": ["no approved subsidies to pay"]}, code="nothing-to-pay")
        lines = []
        for n, tid in enumerate(paying, start=1):
            t = tutors[tid]
            reference = f"{run['code']}-{n:05d}"
            lines.append({"_id": reference, "run_id": run_id, "district": district,
                          "term": term, "tutor_id": tid, "tutor_name": t["name"],
                          "amount_fen": t["pay"] - t["claw"], "clawback_fen": t["claw"],
                          "visits": t["visits"], "visit_ids": t["ids"], "status": DRAFT,
                          "statement_id": None, "key": sort_key(reference)})
        for start in range(0, len(lines), 5_000):
            self.lines.insert_many(lines[start:start + 5_000], ordered=False)
        built = self.runs.find_one_and_update(
            {"_id": run_id, "state": BUILDING},
            {"$set": {"state": DRAFT, "lines": len(lines),
                      "visits": sum(tutors[tid]["visits"] for tid in paying),
                      "total_fen": sum(line["amount_fen"] for line in lines)}},
            return_document=True)
        if built is None:
            raise Conflict(f"payout run {run_id} was abandoned while being built",
                           code="payout-run-failed")
        return built

    def approve(self, district: str, run_id: str, sub: str) -> dict[str, Any]:
        """The checker approves the maker's run; the maker never can."""
        run = self.get(district, run_id)
        if run["created_by"] == sub:
            raise Forbidden("maker-checker: the person who created a payout run cannot "
                            "approve it", code="maker-checker")
        if run["state"] == APPROVED and run.get("approved_by") == sub:
            return run
        self._usable(run, DRAFT)
        approved = self.runs.find_one_and_update(
            {"_id": run_id, "state": DRAFT, "stale": {"$ne": True},
             "created_by": {"$ne": sub}},
            {"$set": {"state": APPROVED, "approved_by": sub, "approved_at": clock.stamp()}},
            return_document=True)
        if approved is None:
            self._usable(self.get(district, run_id), DRAFT)
            raise Conflict(f"payout run {run_id} changed meanwhile", code="payout-run-changed")
        return approved

    def _usable(self, run: dict[str, Any], wanted: str) -> None:
        if run.get("stale"):
            raise Conflict(f"payout run {run['_id']} is stale ({run.get('stale_reason')}): "
                           "discard it and create a new one", code="payout-run-stale")
        if run["state"] != wanted:
            raise Conflict(f"payout run {run['_id']} is {run['state']}, not {wanted}",
                           code="payout-run-state")

    def discard(self, district: str, run_id: str, sub: str) -> dict[str, Any]:
        run = self.get(district, run_id)
        if run["state"] == DISCARDED:
            return run
        discarded = self.runs.find_one_and_update(
            {"_id": run_id, "state": {"$in": [DRAFT, APPROVED]}},
            {"$set": {"state": DISCARDED, "discarded_by": sub, "discarded_at": clock.stamp(),
                      "released": False}}, return_document=True)
        if discarded is None:
            raise Conflict(f"payout run {run_id} is {run['state']}; only draft or approved "
                           "runs can be discarded", code="payout-run-state")
        self._release(discarded)
        return self.get(district, run_id)

    def _release(self, run: dict[str, Any]) -> None:
        self.accruals.update_many({"run_id": run["_id"],
                                   "status": {"$in": ["approved", "clawback_due"]}},
                                  {"$set": {"run_id": None}})
        self.lines.update_many({"run_id": run["_id"]}, {"$set": {"status": "discarded"}})
        self.runs.update_one({"_id": run["_id"]}, {"$set": {"released": True}})

    # -- export -------------------------------------------------------------------------
    def export(self, district: str, run_id: str, sub: str) -> dict[str, Any]:
        """Freeze an approved run: post it, mark its lines sent, keep the file's hash."""
        run = self.get(district, run_id)
        if run["state"] == EXPORTED:
            return run
        if run["state"] != EXPORTING:
            self._usable(run, APPROVED)
            started = self.runs.find_one_and_update(
                {"_id": run_id, "state": APPROVED, "stale": {"$ne": True}},
                {"$set": {"state": EXPORTING, "exported_by": sub,
                          "exporting_since": clock.stamp()}}, return_document=True)
            if started is None:
                return self.export(district, run_id, sub)
            run = started
        return self._finish_export(run)

    def _finish_export(self, run: dict[str, Any]) -> dict[str, Any]:
        run_id, district, term = run["_id"], run["district"], run["term"]
        lines = list(self.lines.find({"run_id": run_id}).sort("key", ASCENDING))
        transit = chart.transit(district, term)
        names = {chart.payable(district, term, line["tutor_id"]): line["tutor_name"]
                 for line in lines}
        self.ledger.open_accounts([transit, *names], names=names)
        for n, start in enumerate(range(0, len(lines), CHUNK)):
            chunk = lines[start:start + CHUNK]
            entries = [Entry(chart.payable(district, term, line["tutor_id"]),
                             -int(line["amount_fen"])) for line in chunk]
            entries.append(Entry(transit, sum(int(line["amount_fen"]) for line in chunk)))
            self.ledger.post(f"payout:{run_id}:{n:04d}", entries, kind="payout",
                             category="payout", district=district,
                             memo=f"payout run {run['code']}", actor=run.get("exported_by"),
                             refs={"run_id": run_id})
        now = clock.stamp()
        self.lines.update_many({"run_id": run_id, "status": DRAFT},
                               {"$set": {"status": "sent", "sent_at": now}})
        self.accruals.update_many({"run_id": run_id, "status": "approved"},
                                  {"$set": {"status": "in_transit", "exported_at": now,
                                            "updated_at": now}})
        self.accruals.update_many({"run_id": run_id, "status": "clawback_due"},
                                  {"$set": {"status": "recovered", "recovered_at": now,
                                            "updated_at": now}})
        text = exports.payout_file(run, lines)
        done = self.runs.find_one_and_update(
            {"_id": run_id, "state": EXPORTING},
            {"$set": {"state": EXPORTED, "exported_at": now,
                      "file_sha256": hashlib.sha256(text.encode()).hexdigest()}},
            return_document=True)
        return done or self.get(district, run_id)

    def payout_file(self, district: str, run_id: str) -> tuple[str, str]:
        """(filename, CSV text) of an exported run: the same bytes every time."""
        run = self.get(district, run_id)
        if run["state"] != EXPORTED:
            raise Conflict(f"payout run {run_id} is {run['state']}; export it first",
                           code="payout-run-state")
        lines = list(self.lines.find({"run_id": run_id}).sort("key", ASCENDING))
        return f"payout-{run['code']}.csv", exports.payout_file(run, lines)

    # -- recovery -----------------------------------------------------------------------
    def resume(self, older_than_s: float = 300.0) -> int:
        """Fail runs a dead worker left building, finish exports, release discarded runs."""
        cutoff = clock.stamp(clock.now() - timedelta(seconds=older_than_s))
        n = 0
        for run in self.runs.find({"state": BUILDING, "created_at": {"$lt": cutoff}}).limit(20):
            failed = self.runs.find_one_and_update(
                {"_id": run["_id"], "state": BUILDING},
                {"$set": {"state": FAILED, "released": False}}, return_document=True)
            if failed is not None:
                self._release(failed)
                n += 1
        for run in self.runs.find({"state": EXPORTING}).limit(20):
            if (run.get("exporting_since") or run["created_at"]) < cutoff:
                self._finish_export(run)
                n += 1
        for state in (DISCARDED, FAILED):
            for run in self.runs.find({"state": state, "released": False}).limit(20):
                self._release(run)
                n += 1
        return n


def run_view(run: dict[str, Any]) -> dict[str, Any]:
    out = {"run_id": run["_id"]}
    for name in ("code", "district", "term", "state", "note", "lines", "visits", "total_fen",
                 "stale_reason", "created_by", "created_at", "approved_by", "approved_at",
                 "exported_by", "exported_at", "file_sha256"):
        out[name] = run.get(name)
    out["stale"] = bool(run.get("stale"))
    return out


def line_view(line: dict[str, Any]) -> dict[str, Any]:
    out = {"reference": line["_id"]}
    for name in ("run_id", "term", "tutor_id", "tutor_name", "amount_fen", "visits",
                 "clawback_fen", "status", "statement_id", "paid_at"):
        out[name] = line.get(name)
    return out
