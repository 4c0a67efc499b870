"""Funding benchmark: ledger postings per second, and reconciling a term of 100,000 visits.

    .venv/bin/python bench/funding.py                         # a private nx-27017
    .venv/bin/python bench/funding.py --mongo-url mongodb://127.0.0.1:27017   # a server
    .venv/bin/python bench/funding.py --visits 20000          # a smaller term

Everything goes through the funding domain layer (no broker, no gateway), on a fresh
database that is dropped afterwards: a private nx-27017 (temporary directory, own port)
unless --mongo-url names a server. Phases:

1. postings: `Ledger.post` of a budget -> payable posting, one at a time (the path every
   accrual takes); the same ids again (repeats are no-ops); `Ledger.post_many` batches.
2. accruals: `Accruals.on_confirmed` one visit at a time (the event handler's path).
3. a term: N visits of N tutors accrued with `accrue_many`, approved, gathered into one
   payout run of N lines, approved by a second person and exported.
4. reconciliation: a bank statement of N lines (shuffled, CSV) imported and matched;
   the time of `import_statement` is the figure asked for.
5. the term report and its XLSX export over the same N visits.

Figures go to stdout and var/bench/funding.json (medians where a phase repeats). Nothing
here asserts a timing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pymongo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deploy.stack import private_mongo as stack_mongo  # noqa: E402
from services.funding import accounts as chart  # noqa: E402
from services.funding import exports  # noqa: E402
from services.funding.ledger import Entry  # noqa: E402
from services.funding.repository import FundingRepository  # noqa: E402
from services.kit.config import Settings  # noqa: E402

DISTRICT = "基准区"  # the term of N visits
WARM_UP = "热身区"  # postings and one-by-one accruals, kept out of that term
TERM = "2026-autumn"
BUDGET = chart.budget(WARM_UP, TERM, "fiscal_subsidy")


@contextmanager
def private_mongo() -> Iterator[str]:
    tmp = Path(tempfile.mkdtemp(prefix="kepu-bench-funding-"))
    try:
        with stack_mongo(tmp) as url:
            yield url
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def say(text: str) -> None:
    print(text, flush=True)


def prepare(books: FundingRepository, district: str) -> None:
    """A rate card and a budget large enough for anything the bench does."""
    books.cards.create(district, {
        "effective_from": date(2026, 9, 1), "rates": {"junior": 6_000, "intermediate": 8_000,
                                                      "senior": 10_000, "expert": 15_000},
        "cap_per_visit_fen": None, "cap_per_school_term_fen": None, "note": "bench"}, "maker")
    books.budgets.fund(district, "maker", {"term": TERM, "source": "fiscal_subsidy",
                                           "amount_fen": 10**11, "memo": "bench"}, None)


def visit(n: int, district: str = DISTRICT, day: date = date(2026, 10, 20)) -> dict[str, Any]:
    return {"visit_id": f"vis_b{n:07d}", "tutor_id": f"tut_{n:07d}",
            "tutor_name": f"辅导员{n}", "tutor_level": ("junior", "senior", "expert")[n % 3],
            "venue_id": f"ven_{n % 50}", "school_id": f"sch_{n % 400}", "district": district,
            "date": day.isoformat(), "term": TERM, "hours": (1.0, 1.5, 2.0)[n % 3],
            "students": 30 + n % 20, "subject": "科学"}


def bench_postings(books: FundingRepository, n: int, rounds: int) -> dict[str, Any]:
    ledger = books.ledger
    rates, repeats, batches = [], [], []
    for r in range(rounds):
        ids = [f"bench:{r}:{i}" for i in range(n)]
        payables = [chart.payable(WARM_UP, TERM, f"p{i % 500}") for i in range(n)]
        ledger.open_accounts(payables)

        def single(ids: list[str] = ids, payables: list[str] = payables) -> None:
            for pid, payable in zip(ids, payables, strict=True):
                ledger.post(pid, [Entry(BUDGET, -100), Entry(payable, 100)], kind="accrual",
                            category="subsidy", district=WARM_UP)

        seconds, _ = timed(single)
        rates.append(n / seconds)
        seconds, _ = timed(single)  # the same ids: every one a no-op answering the first
        repeats.append(n / seconds)
        batch = [{"posting_id": f"batch:{r}:{i}", "entries": [Entry(BUDGET, -100),
                                                               Entry(payables[i], 100)],
                  "kind": "accrual", "category": "subsidy", "district": WARM_UP}
                 for i in range(n)]

        def many(batch: list[dict[str, Any]] = batch) -> None:
            for start in range(0, len(batch), 500):
                ledger.post_many(batch[start:start + 500])

        seconds, _ = timed(many)
        batches.append(n / seconds)
        say(f"  round {r + 1}: {rates[-1]:.0f} postings/s one by one, {repeats[-1]:.0f}/s "
            f"repeated, {batches[-1]:.0f}/s in batches of 500")
    return {"postings": n, "rounds": rounds,
            "postings_per_s": round(statistics.median(rates), 1),
            "repeat_postings_per_s": round(statistics.median(repeats), 1),
            "batched_postings_per_s": round(statistics.median(batches), 1)}


def bench_accruals(books: FundingRepository, n: int) -> dict[str, Any]:
    visits = [visit(9_000_000 + i, WARM_UP) for i in range(n)]
    seconds, _ = timed(lambda: [books.accruals.on_confirmed(v) for v in visits])
    return {"accruals": n, "accruals_per_s": round(n / seconds, 1)}


def bench_term(books: FundingRepository, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"visits": n}
    visits = [visit(i) for i in range(n)]

    def accrue() -> dict[str, int]:
        counts: dict[str, int] = {}
        for start in range(0, n, 2_000):
            for status, c in books.accruals.accrue_many(visits[start:start + 2_000]).items():
                counts[status] = counts.get(status, 0) + c
        return counts

    seconds, counts = timed(accrue)
    assert counts == {"awaiting_approval": n}, counts
    out["accrue_s"] = round(seconds, 1)
    say(f"  accrued {n} visits in {seconds:.1f} s ({n / seconds:.0f}/s, batched)")
    seconds, result = timed(lambda: books.accruals.approve(DISTRICT, None, TERM, "checker"))
    assert result["count"] == n
    out["approve_s"] = round(seconds, 1)
    seconds, run = timed(lambda: books.payouts.create(DISTRICT, TERM, "maker", "bench"))
    assert run["lines"] == n
    out["payout_run_create_s"] = round(seconds, 1)
    books.payouts.approve(DISTRICT, run["_id"], "checker")
    seconds, run = timed(lambda: books.payouts.export(DISTRICT, run["_id"], "checker"))
    assert run["state"] == "exported"
    out["payout_run_export_s"] = round(seconds, 1)
    say(f"  payout run of {n} lines: created in {out['payout_run_create_s']} s, exported "
        f"in {out['payout_run_export_s']} s")

    lines = list(books.payouts.lines.find({"run_id": run["_id"]}, {"amount_fen": 1}))
    random.Random(7).shuffle(lines)
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["date", "reference", "amount", "payee"])
    for line in lines:
        writer.writerow(["2026-12-01", line["_id"], exports.yuan(int(line["amount_fen"])),
                         "辅导员"])
    body = text.getvalue()
    out["statement_bytes"] = len(body.encode())
    seconds, stm = timed(lambda: books.reconciliation.import_statement(DISTRICT, "maker", body))
    assert stm["counts"] == {"matched": n}, stm["counts"]
    out["reconcile_s"] = round(seconds, 2)
    balances = books.ledger.balances([chart.transit(DISTRICT, TERM), chart.paid(DISTRICT, TERM)])
    assert balances[chart.transit(DISTRICT, TERM)] == 0
    say(f"  reconciled a statement of {n} lines ({len(body) / 1e6:.1f} MB) in {seconds:.2f} s")

    seconds, report = timed(lambda: books.report(DISTRICT, TERM))
    assert report["ledger"]["agrees"], report["ledger"]
    out["report_s"] = round(seconds, 2)
    seconds, data = timed(lambda: exports.report_xlsx(report))
    out["report_xlsx_s"] = round(seconds, 2)
    out["report_xlsx_bytes"] = len(data)
    say(f"  term report in {out['report_s']} s, XLSX ({len(data) / 1e6:.1f} MB) in "
        f"{out['report_xlsx_s']} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mongo-url", help="a MongoDB (or nx-27017) to use; default: private")
    parser.add_argument("--visits", type=int, default=100_000)
    parser.add_argument("--postings", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accruals", type=int, default=500)
    args = parser.parse_args()

    with (private_mongo() if not args.mongo_url else _given(args.mongo_url)) as url:
        client = pymongo.MongoClient(url, tz_aware=True)
        name = f"bench_funding_{uuid.uuid4().hex[:8]}"
        try:
            books = FundingRepository(client[name], Settings())
            books.ensure_indexes()
            prepare(books, DISTRICT)
            prepare(books, WARM_UP)
            results: dict[str, Any] = {"server": "private nx-27017" if not args.mongo_url
                                       else url}
            say(f"1. postings ({args.postings} x {args.rounds} rounds)")
            results["postings"] = bench_postings(books, args.postings, args.rounds)
            say(f"2. accruals one by one ({args.accruals})")
            results["accruals"] = bench_accruals(books, args.accruals)
            say(f"   {results['accruals']['accruals_per_s']} accruals/s")
            say(f"3-5. a term of {args.visits} visits")
            results["term"] = bench_term(books, args.visits)
        finally:
            client.drop_database(name)
            client.close()
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "funding.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    say(json.dumps(results, indent=2, ensure_ascii=False))


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
