"""Accruals: a confirmed tutor visit becomes a subsidy owed to the tutor, once.

One accrual document per visit (`_id` = visit id), so a replayed event finds the first
one and changes nothing. The subsidy comes from the rate card in force on the visit day
(see `rate_cards`) and is posted from the district's term budgets to the tutor's payable,
drawing `fiscal_subsidy` first, then `service_fees` (never `collected_fees`, which are
held for what parents paid them for). Posting ids are `accrual:<visit>:<attempt>`, so a
retried handler drives the same posting instead of making another.

Statuses: `accruing` (in flight) -> `awaiting_approval` -> `approved` -> `in_transit`
(in an exported payout file) -> `paid` (seen on a bank statement). A visit the budgets
cannot cover is `unfunded`, one with no rate is `unfunded` too (reason says which), one
over the school's term cap is `capped`; finance funds or sets a card and retries them.

A visit cancelled after confirmation is reversed: the reversal posting gives the money
back to the budgets it came from. If its payout was already exported or paid, the
reversal leaves the tutor's payable below zero, a clawback (`clawback_due`): the amount
is netted against the tutor's next payout line in the same term, or recorded as repaid
(`recovered`). An accrual sitting in a payout run not yet exported makes that run
`stale`: it can no longer be approved or exported and must be discarded and rebuilt, so
an approver never signs a total that changed under them.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.funding import accounts as chart
from services.funding.ledger import APPLIED, Entry, Ledger
from services.funding.rate_cards import NoRate, RateCards, SchoolCaps, subsidy
from services.kit import clock
from services.kit.errors import Conflict, NotFound
from services.kit.pages import page, sort_key

ACCRUING, UNFUNDED, CAPPED = "accruing", "unfunded", "capped"
AWAITING, APPROVED, IN_TRANSIT, PAID = "awaiting_approval", "approved", "in_transit", "paid"
REVERSING, REVERSED, CLAWBACK, RECOVERED, CANCELLED = (
    "reversing", "reversed", "clawback_due", "recovered", "cancelled")
STANDING = (AWAITING, APPROVED, IN_TRANSIT, PAID)  # the subsidy stands and is owed or paid
MAX_ATTEMPTS_PER_TRY = 3

VISIT_FIELDS = ("visit_id", "tutor_id", "tutor_name", "tutor_level", "venue_id", "school_id",
                "district", "date", "term", "hours", "students", "subject")


class RunInProgress(Exception):
    """The accrual's payout run is being exported right now; the event is retried later."""


def slug(visit_id: str) -> str:
    """A visit id fit for a posting id (booking's ids already are)."""
    if re.fullmatch(r"[A-Za-z0-9_\-]{1,100}", visit_id):
        return visit_id
    return "h" + hashlib.sha1(visit_id.encode()).hexdigest()[:24]


def draw(amount: int, available: dict[str, int]) -> dict[str, int] | None:
    """Which sources pay `amount`, in the order given (fiscal subsidy first), from what
    each budget has; None when together they cannot cover it."""
    plan, left = {}, amount
    for source_name, balance in available.items():
        take = min(left, max(0, balance))
        if take:
            plan[source_name] = take
            left -= take
    return plan if left == 0 else None


class Accruals:
    def __init__(self, db: Database, ledger: Ledger, cards: RateCards) -> None:
        self.accruals = db.accruals
        self.runs = db.payout_runs
        self.ledger = ledger
        self.cards = cards
        self.caps = SchoolCaps(db)

    def ensure_indexes(self) -> None:
        for name in ("district", "status", "run_id"):  # single-field: see Ledger's indexes
            self.accruals.create_index(name)

    # -- reading ------------------------------------------------------------------------
    def get(self, district: str, visit_id: str) -> dict[str, Any]:
        doc = self.accruals.find_one({"_id": visit_id, "district": district})
        if doc is None:
            raise NotFound(f"no accrual for visit {visit_id} in {district}",
                           code="accrual-not-found")
        return doc

    def list(self, district: str, query: dict[str, Any]) -> tuple[list[dict[str, Any]],
                                                                   str | None]:
        flt: dict[str, Any] = {"district": district}
        for name in ("term", "status", "tutor_id", "school_id"):
            if query.get(name):
                flt[name] = query[name]
        return page(self.accruals, flt, query.get("limit", 50), query.get("cursor"))

    # -- a visit was confirmed ----------------------------------------------------------
    def on_confirmed(self, visit: dict[str, Any]) -> dict[str, Any]:
        """Accrue a confirmed visit's subsidy; a repeat answers the first accrual."""
        now = clock.stamp()
        doc = {"_id": visit["visit_id"], **{f: visit.get(f) for f in VISIT_FIELDS},
               "date": str(visit["date"]), "hours": float(visit["hours"]),
               "status": ACCRUING, "attempt": 0, "run_id": None, "created_at": now,
               "updated_at": now, "key": sort_key(str(visit["date"]), visit["visit_id"])}
        try:
            self.accruals.insert_one(doc)
        except DuplicateKeyError:
            existing = self.accruals.find_one({"_id": visit["visit_id"]})
            assert existing is not None
            return self._accrue(existing) if existing["status"] == ACCRUING else existing
        return self._accrue(doc)

    def accrue_many(self, visits: list[dict[str, Any]]) -> dict[str, int]:
        """Accrue a batch of confirmed visits with bulk writes (a backfill, an import, the
        benchmark); each visit ends exactly as `on_confirmed` would leave it.

        Visits the batch cannot plan simply (no card or rate, a per-school cap, a budget
        running short, a visit seen before) go through `on_confirmed` one by one.
        """
        now = clock.stamp()
        planned, single = self._plan_batch(visits, now)
        fresh = self._insert_new(planned, single, visits)
        postings = self._post_batch(fresh)
        self._settle_batch(postings, now)
        for v in single:
            self.on_confirmed(v)
        return self._statuses([v["visit_id"] for v in visits])

    def _plan_batch(self, visits: list[dict[str, Any]], now: str
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(accruals planned against the budgets as read once, visits left for one by one)."""
        cards: dict[tuple[str, str], dict[str, Any] | None] = {}
        balances: dict[str, int] = {}
        planned: list[dict[str, Any]] = []
        single: list[dict[str, Any]] = []
        for v in visits:
            key = (v["district"], str(v["date"]))
            if key not in cards:
                cards[key] = self.cards.in_force(*key)
            doc = self._plan_visit(v, cards[key], balances, now)
            if doc is None:
                single.append(v)
            else:
                planned.append(doc)
        return planned, single

    def _plan_visit(self, v: dict[str, Any], card: dict[str, Any] | None,
                    balances: dict[str, int], now: str) -> dict[str, Any] | None:
        """The accrual of one visit of a batch, its budgets debited in `balances`; None
        when the visit needs the one-by-one path."""
        if (card is None or card.get("cap_per_school_term_fen") is not None
                or v["tutor_level"] not in (card.get("rates") or {})):
            return None
        amount, capped_by = subsidy(card, v["tutor_level"], float(v["hours"]))
        budgets = [chart.budget(v["district"], v["term"], s) for s in chart.SUBSIDY_SOURCES]
        missing = [b for b in budgets if b not in balances]
        if missing:
            balances.update(self.ledger.balances(missing))
        plan = draw(amount, {s: balances[b] for s, b in
                             zip(chart.SUBSIDY_SOURCES, budgets, strict=True)})
        if amount == 0 or plan is None:
            return None
        for source_name, take in plan.items():
            balances[chart.budget(v["district"], v["term"], source_name)] -= take
        day = str(v["date"])
        return {"_id": v["visit_id"], **{f: v.get(f) for f in VISIT_FIELDS}, "date": day,
                "hours": float(v["hours"]), "status": ACCRUING, "attempt": 1, "run_id": None,
                "created_at": now, "updated_at": now, "key": sort_key(day, v["visit_id"]),
                "rate_card_id": card["_id"], "amount_fen": amount, "capped_by": capped_by,
                "rate_fen_per_hour": int(card["rates"][v["tutor_level"]]), "sources": plan,
                "posting_id": f"accrual:{slug(v['visit_id'])}:1"}

    def _post_batch(self, fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The batch's postings, budgets -> payables, through the ledger's bulk path."""
        names = {chart.payable(d["district"], d["term"], d["tutor_id"]): d["tutor_name"]
                 for d in fresh}
        self.ledger.open_accounts(list(names), names=names)
        return self.ledger.post_many([{
            "posting_id": d["posting_id"],
            "entries": [Entry(chart.budget(d["district"], d["term"], s), -int(x))
                        for s, x in d["sources"].items()]
            + [Entry(chart.payable(d["district"], d["term"], d["tutor_id"]), d["amount_fen"])],
            "kind": "accrual", "category": "subsidy", "district": d["district"],
            "memo": f"tutor visit {d['_id']} on {d['date']}",
            "refs": {"visit_id": d["_id"], "tutor_id": d["tutor_id"],
                     "school_id": d["school_id"]}} for d in fresh])

    def _settle_batch(self, postings: list[dict[str, Any]], now: str) -> None:
        """Applied postings: their accruals await approval; refused: the slow path."""
        applied = [p["refs"]["visit_id"] for p in postings if p["state"] == APPLIED]
        for start in range(0, len(applied), 1_000):
            self.accruals.update_many({"_id": {"$in": applied[start:start + 1_000]},
                                       "status": ACCRUING},
                                      {"$set": {"status": AWAITING, "accrued_at": now}})
        for p in postings:
            if p["state"] != APPLIED:  # a budget moved under the batch: the slow path
                doc = self.accruals.find_one({"_id": p["refs"]["visit_id"]})
                if doc is not None and doc["status"] == ACCRUING:
                    self._accrue(doc)

    def _statuses(self, ids: list[str]) -> dict[str, int]:
        """How many of these accruals are in each status."""
        counts: dict[str, int] = {}
        for start in range(0, len(ids), 1_000):
            for d in self.accruals.find({"_id": {"$in": ids[start:start + 1_000]}},
                                        {"status": 1}):
                counts[d["status"]] = counts.get(d["status"], 0) + 1
        return counts

    def _insert_new(self, planned: list[dict[str, Any]], single: list[dict[str, Any]],
                    visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert planned accruals; those that already exist go to the one-by-one path."""
        if not planned:
            return []
        try:
            self.accruals.insert_many(planned, ordered=False)
            return planned
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in errors):
                raise
            seen = {planned[e["index"]]["_id"] for e in errors}
        by_id = {v["visit_id"]: v for v in visits}
        single.extend(by_id[i] for i in seen)
        return [d for d in planned if d["_id"] not in seen]

    def _accrue(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Drive an `accruing` accrual to awaiting_approval, unfunded or capped.

        Two workers may drive one accrual (a retried handler, the recovery timer); the
        loser of a status compare-and-set answers what the winner wrote.
        """
        for _ in range(5):
            try:
                return self._accrue_once(doc)
            except Conflict:
                fresh = self.accruals.find_one({"_id": doc["_id"]})
                assert fresh is not None
                if fresh["status"] != ACCRUING:
                    return fresh
                doc = fresh  # carry on with the other worker's attempt: it is idempotent
        raise Conflict(f"accrual {doc['_id']} kept changing", code="accrual-changed")

    def _accrue_once(self, doc: dict[str, Any]) -> dict[str, Any]:
        tries = 0
        while True:
            if doc.get("posting_id"):
                posting = self.ledger.postings.find_one({"_id": doc["posting_id"]})
                if posting is None:  # the worker died before posting its plan
                    posting = self._post(doc)
                else:
                    posting = self.ledger.drive(posting)
                if posting["state"] == APPLIED:
                    return self._set(doc, ACCRUING, AWAITING, {"accrued_at": clock.stamp()})
                tries += 1  # refused: a budget moved between reading it and posting
                if tries >= MAX_ATTEMPTS_PER_TRY:
                    return self._unfunded(doc, "insufficient_budget",
                                          posting["refusal"]["detail"])
            card = self.cards.in_force(doc["district"], doc["date"])
            if card is None:
                return self._unfunded(doc, "no_rate_card",
                                      f"no rate card in force in {doc['district']} on "
                                      f"{doc['date']}")
            try:
                amount, capped_by = subsidy(card, doc["tutor_level"], doc["hours"])
            except NoRate:
                return self._unfunded(doc, "no_rate_for_level",
                                      f"rate card {card['_id']} has no rate for level "
                                      f"{doc['tutor_level']}")
            cap = card.get("cap_per_school_term_fen")
            if cap is not None:
                granted = self.caps.reserve(doc["district"], doc["term"], doc["school_id"],
                                            doc["_id"], amount, int(cap))
                if granted < amount:
                    amount, capped_by = granted, "school_term"
            pricing = {"rate_card_id": card["_id"], "amount_fen": amount,
                       "rate_fen_per_hour": int(card["rates"][doc["tutor_level"]]),
                       "capped_by": capped_by}
            if amount == 0:
                return self._set(doc, ACCRUING, CAPPED, {
                    **pricing, "reason": {"code": "school_term_cap",
                                          "detail": f"school {doc['school_id']} reached its "
                                                    f"cap of {cap} fen for {doc['term']}"}})
            plan = self._plan(doc, amount)
            if plan is None:
                return self._unfunded(doc, "insufficient_budget",
                                      f"the {doc['term']} budgets of {doc['district']} "
                                      f"cannot cover {amount} fen", pricing)
            attempt = int(doc.get("attempt", 0)) + 1
            doc = self._set(doc, ACCRUING, ACCRUING, {
                **pricing, "attempt": attempt, "sources": plan,
                "posting_id": f"accrual:{slug(doc['_id'])}:{attempt}"})

    def _plan(self, doc: dict[str, Any], amount: int) -> dict[str, int] | None:
        """Which budgets pay `amount`: fiscal subsidy first, then service fees."""
        budgets = [chart.budget(doc["district"], doc["term"], s) for s in chart.SUBSIDY_SOURCES]
        balances = self.ledger.balances(budgets)
        return draw(amount, {s: balances[b] for s, b in
                             zip(chart.SUBSIDY_SOURCES, budgets, strict=True)})

    def _post(self, doc: dict[str, Any]) -> dict[str, Any]:
        entries = [Entry(chart.budget(doc["district"], doc["term"], s), -int(x))
                   for s, x in doc["sources"].items()]
        entries.append(Entry(chart.payable(doc["district"], doc["term"], doc["tutor_id"]),
                             int(doc["amount_fen"])))
        self.ledger.open_accounts([e.account for e in entries], names={
            entries[-1].account: doc["tutor_name"]})
        return self.ledger.post(doc["posting_id"], entries, kind="accrual", category="subsidy",
                                district=doc["district"],
                                memo=f"tutor visit {doc['_id']} on {doc['date']}",
                                refs={"visit_id": doc["_id"], "tutor_id": doc["tutor_id"],
                                      "school_id": doc["school_id"]})

    def _unfunded(self, doc: dict[str, Any], code: str, detail: str,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
        self.caps.release(doc["district"], doc["term"], doc["school_id"], doc["_id"])
        return self._set(doc, ACCRUING, UNFUNDED, {**(extra or {}), "posting_id": None,
                                                   "sources": None,
                                                   "reason": {"code": code, "detail": detail}})

    def _set(self, doc: dict[str, Any], old: str, new: str, fields: dict[str, Any],
             extra_filter: dict[str, Any] | None = None) -> dict[str, Any]:
        """Compare-and-set of an accrual's status; a lost race raises Conflict."""
        flt = {"_id": doc["_id"], "status": old, **(extra_filter or {})}
        if old == new and doc.get("attempt") is not None:
            flt["attempt"] = doc.get("attempt", 0)
        changed = self.accruals.find_one_and_update(
            flt, {"$set": {**fields, "status": new, "updated_at": clock.stamp()}},
            return_document=True)
        if changed is None:
            raise Conflict(f"accrual {doc['_id']} changed meanwhile; try again",
                           code="accrual-changed")
        return changed

    # -- finance acts -------------------------------------------------------------------
    def retry(self, district: str, visit_ids: list[str] | None, term: str | None
              ) -> dict[str, Any]:
        """Try unfunded (or capped) accruals again, after funding or a new rate card."""
        flt: dict[str, Any] = {"district": district, "status": {"$in": [UNFUNDED, CAPPED]}}
        if visit_ids:
            flt["_id"] = {"$in": visit_ids}
        elif term:
            flt["term"] = term
        done, skipped = [], []
        for doc in self.accruals.find(flt).sort("key", ASCENDING).limit(5_000):
            started = self.accruals.find_one_and_update(
                {"_id": doc["_id"], "status": doc["status"]},
                {"$set": {"status": ACCRUING, "reason": None, "updated_at": clock.stamp()}},
                return_document=True)
            if started is None:
                continue
            if doc["status"] == CAPPED:
                self.caps.release(doc["district"], doc["term"], doc["school_id"], doc["_id"])
            result = self._accrue(started)
            (done if result["status"] == AWAITING else skipped).append(
                result["_id"] if result["status"] == AWAITING else
                {"visit_id": result["_id"], "status": result["status"],
                 "reason": result.get("reason")})
        self._explain_missing(district, visit_ids, done, skipped)
        return {"done": done, "skipped": skipped, "count": len(done)}

    def approve(self, district: str, visit_ids: list[str] | None, term: str | None,
                sub: str) -> dict[str, Any]:
        """Approve accruals awaiting approval (the listed ones, or all of a term)."""
        now = clock.stamp()
        sets = {"status": APPROVED, "approved_by": sub, "approved_at": now, "updated_at": now}
        if not visit_ids:
            result = self.accruals.update_many(
                {"district": district, "term": term, "status": AWAITING}, {"$set": sets})
            return {"done": [], "skipped": [], "count": result.modified_count}
        done, skipped = [], []
        for visit_id in dict.fromkeys(visit_ids):
            changed = self.accruals.find_one_and_update(
                {"_id": visit_id, "district": district, "status": AWAITING}, {"$set": sets})
            if changed is not None:
                done.append(visit_id)
        self._explain_missing(district, visit_ids, done, skipped)
        return {"done": done, "skipped": skipped, "count": len(done)}

    def _explain_missing(self, district: str, visit_ids: list[str] | None, done: list[str],
                         skipped: list[dict[str, Any]]) -> None:
        if not visit_ids:
            return
        seen = set(done) | {s["visit_id"] for s in skipped}
        rest = [v for v in dict.fromkeys(visit_ids) if v not in seen]
        found = {d["_id"]: d["status"] for d in self.accruals.find(
            {"_id": {"$in": rest}, "district": district}, {"status": 1})}
        skipped.extend({"visit_id": v, "status": found.get(v, "not_found")} for v in rest)

    def recover(self, district: str, visit_id: str, sub: str, memo: str) -> dict[str, Any]:
        """The tutor paid a clawback back: close it in the ledger."""
        doc = self.get(district, visit_id)
        if doc["status"] == RECOVERED:
            return doc
        if doc["status"] != CLAWBACK or doc.get("run_id"):
            raise Conflict(f"visit {visit_id} has no open clawback (status {doc['status']})",
                           code="no-clawback")
        amount = int(doc["amount_fen"])
        posting = self.ledger.post(
            f"recovery:{slug(visit_id)}",
            [Entry(chart.paid(district, doc["term"]), -amount),
             Entry(chart.payable(district, doc["term"], doc["tutor_id"]), amount)],
            kind="clawback_recovery", category="recovery", district=district, memo=memo,
            actor=sub, refs={"visit_id": visit_id, "tutor_id": doc["tutor_id"]})
        return self._set(doc, CLAWBACK, RECOVERED, {"recovery_posting_id": posting["_id"],
                                                    "recovered_at": clock.stamp()},
                         {"run_id": None})

    # -- a visit was cancelled ----------------------------------------------------------
    def on_cancelled(self, visit: dict[str, Any], previous_status: str) -> dict[str, Any] | None:
        """Undo what a confirmed visit accrued; see the module docs for each case."""
        if previous_status != "confirmed":
            return None
        doc = self.accruals.find_one({"_id": visit["visit_id"]})
        if doc is None:  # the cancellation overtook the confirmation: leave a tombstone
            now = clock.stamp()
            try:
                self.accruals.insert_one({
                    "_id": visit["visit_id"], **{f: visit.get(f) for f in VISIT_FIELDS},
                    "date": str(visit["date"]), "hours": float(visit["hours"]),
                    "status": CANCELLED, "run_id": None, "created_at": now, "updated_at": now,
                    "key": sort_key(str(visit["date"]), visit["visit_id"]),
                    "reason": {"code": "cancelled", "detail": "cancelled before accrual"}})
                return self.accruals.find_one({"_id": visit["visit_id"]})
            except DuplicateKeyError:
                doc = self.accruals.find_one({"_id": visit["visit_id"]})
        assert doc is not None
        for _ in range(20):
            status = doc["status"]
            if status == ACCRUING:
                doc = self._accrue(doc)
            elif status in (UNFUNDED, CAPPED):
                self.caps.release(doc["district"], doc["term"], doc["school_id"], doc["_id"])
                doc = self._try_set(doc, status, CANCELLED, {"reversed_at": clock.stamp()})
            elif status in (AWAITING, APPROVED):
                if doc.get("run_id") and not self._mark_run_stale(doc):
                    raise RunInProgress(doc["run_id"])
                doc = self._try_set(doc, status, REVERSING, {"clawback": False},
                                    {"run_id": doc.get("run_id")})
            elif status in (IN_TRANSIT, PAID):
                doc = self._try_set(doc, status, REVERSING, {"clawback": True})
            elif status == REVERSING:
                return self._reverse(doc)
            else:
                return doc
        raise Conflict(f"accrual {doc['_id']} kept changing", code="accrual-changed")

    def _try_set(self, doc: dict[str, Any], old: str, new: str, fields: dict[str, Any],
                 extra: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return self._set(doc, old, new, fields, extra)
        except Conflict:
            fresh = self.accruals.find_one({"_id": doc["_id"]})
            assert fresh is not None
            return fresh

    def _mark_run_stale(self, doc: dict[str, Any]) -> bool:
        """True once the accrual's unexported run can no longer be approved or exported."""
        marked = self.runs.find_one_and_update(
            {"_id": doc["run_id"], "state": {"$in": ["building", "draft", "approved"]}},
            {"$set": {"stale": True, "stale_reason": f"visit {doc['_id']} was cancelled"}})
        if marked is not None:
            return True
        run = self.runs.find_one({"_id": doc["run_id"]}, {"state": 1})
        return run is None or run["state"] in ("discarded", "failed")

    def _reverse(self, doc: dict[str, Any]) -> dict[str, Any]:
        posting = self.ledger.reverse(doc["posting_id"], kind="accrual_reversal",
                                      memo=f"tutor visit {doc['_id']} cancelled")
        self.caps.release(doc["district"], doc["term"], doc["school_id"], doc["_id"])
        clawback = bool(doc.get("clawback"))
        return self._set(doc, REVERSING, CLAWBACK if clawback else REVERSED, {
            "reversal_posting_id": posting["_id"], "reversed_at": clock.stamp(),
            **({"run_id": None, "paid_run_id": doc.get("run_id")} if clawback else {})})

    # -- recovery -----------------------------------------------------------------------
    def resume(self, older_than_s: float = 60.0) -> int:
        """Finish accruals and reversals a dead worker left in flight."""
        cutoff = clock.stamp(clock.now() - timedelta(seconds=older_than_s))
        n = 0
        for status, finish in ((ACCRUING, self._accrue), (REVERSING, self._reverse)):
            for doc in self.accruals.find({"status": status,
                                           "updated_at": {"$lt": cutoff}}).limit(200):
                finish(doc)
                n += 1
        return n


def view(doc: dict[str, Any]) -> dict[str, Any]:
    out = {"visit_id": doc["_id"]}
    for name in ("district", "term", "date", "school_id", "venue_id", "tutor_id", "tutor_name",
                 "tutor_level", "hours", "students", "subject", "status", "reason",
                 "amount_fen", "rate_fen_per_hour", "rate_card_id", "capped_by", "sources",
                 "posting_id", "reversal_posting_id", "run_id", "approved_by", "approved_at",
                 "accrued_at", "paid_at", "reversed_at", "created_at"):
        out[name] = doc.get(name)
    return out
