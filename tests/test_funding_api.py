"""Funding end to end: events from booking, the HTTP API, payouts and reconciliation.

Booking's tutor-visit flow is exercised elsewhere; here the `booking.tutor_visit_*`
envelopes are published straight to the `booking.events` exchange, as the relay would.
"""

from __future__ import annotations

import csv
import io
import os
import re
import uuid
from datetime import date

import pymongo
import pytest
from openpyxl import load_workbook

from services.gateway.routes import all_routes
from services.kit.actor import Actor, actor_key, sign
from services.kit.config import Settings
from services.kit.errors import Conflict, Forbidden
from services.kit.event_publisher import Publisher
from services.kit.outbox import event
from tests.support import problem, wait_for

pytestmark = pytest.mark.stack
TERM = "2026-autumn"


@pytest.fixture(scope="module")
def publisher(stack, settings_env):
    pub = Publisher(Settings.from_env(settings_env))
    yield pub
    pub.close()


@pytest.fixture(scope="module")
def funding_db(settings_env):
    client = pymongo.MongoClient(settings_env["MONGO_URL"], tz_aware=True)
    yield client.kepu_funding
    client.close()


@pytest.fixture()
def district():
    return f"测试区-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def maker(api, district):
    return api.as_("finance", district, sub=f"maker-{uuid.uuid4().hex[:6]}")


@pytest.fixture()
def checker(api, district):
    return api.as_("finance", district, sub=f"checker-{uuid.uuid4().hex[:6]}")


def visit(district, tutor="tut_1", hours=2.0, **extra):
    return {"visit_id": f"vis_{uuid.uuid4().hex[:16]}", "tutor_id": tutor,
            "tutor_name": f"老师 {tutor}", "tutor_level": "senior", "venue_id": "ven_x",
            "school_id": "sch_x", "district": district, "date": date(2026, 10, 15), "term": TERM,
            "hours": hours, "students": 45, "subject": "天文", **extra}


def confirm(publisher, data):
    envelope = event("booking.tutor_visit_confirmed", data)
    publisher.publish(envelope)
    return envelope


def accrued(client, visit_id, status="awaiting_approval"):
    def check():
        r = client.get(f"/v1/funding/accruals/{visit_id}")
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None
    return wait_for(check, message=f"accrual of {visit_id} is {status}")


def setup_money(client, fiscal=1_000_000):
    r = client.post("/v1/funding/rate-cards", json={
        "effective_from": "2026-09-01",
        "rates": {"junior": 6_000, "intermediate": 8_000, "senior": 10_000, "expert": 15_000}})
    assert r.status_code == 201, r.text
    r = client.post("/v1/funding/budgets/fund", json={
        "term": TERM, "source": "fiscal_subsidy", "amount_fen": fiscal, "memo": "区财政拨款"})
    assert r.status_code == 201, r.text


def test_a_non_finance_role_gets_403_on_every_funding_route(api):
    routes = [r for r in all_routes() if r.path.startswith("/v1/funding")]
    assert len(routes) >= 30
    callers = {"admin": api.admin, "venue": api.as_("venue", "ven_x"),
               "school": api.as_("school", "sch_x")}
    for r in routes:
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", "x", r.path)
        for role, client in callers.items():
            response = client.request(r.method, path, json={})
            assert response.status_code == 403, (role, r.method, path, response.text)
    # a finance token without a district may not act either (the service's actor check)
    lost = api.as_("finance").get("/v1/funding/budgets?term=2026-autumn")
    assert problem(lost, 403)["code"] == "actor-no-org"


def test_replaying_tutor_visit_confirmed_posts_once(maker, district, publisher, funding_db):
    setup_money(maker)
    data = visit(district, hours=1.5)
    envelope = confirm(publisher, data)
    publisher.publish(envelope)  # the very same envelope again (a relay restart)
    confirm(publisher, data)  # and a fresh envelope for the same visit
    accrued(maker, data["visit_id"])
    wait_for(lambda: funding_db.applied_events.count_documents(
        {"handler": "funding.on_visit_confirmed", "event_id": envelope["event_id"],
         "repeats": {"$gte": 1}}), message="the repeat reached the handler and was skipped")
    wait_for(lambda: funding_db.applied_events.count_documents(
        {"handler": "funding.on_visit_confirmed", "state": "applied",
         "event_id": {"$ne": envelope["event_id"]}}) >= 1, message="the re-emitted event")
    assert funding_db.postings.count_documents({"refs.visit_id": data["visit_id"]}) == 1
    payable = f"payable|{district}|{TERM}|tut_1"
    account = maker.get(f"/v1/funding/accounts/{payable}").json()
    assert account["balance_fen"] == 15_000
    entries = maker.get(f"/v1/funding/accounts/{payable}/entries").json()["items"]
    assert [(e["amount_fen"], e["balance_after_fen"]) for e in entries] == [(15_000, 15_000)]


def test_cancelled_after_confirmation_is_reversed(maker, district, publisher):
    setup_money(maker)
    data = visit(district)
    confirm(publisher, data)
    accrued(maker, data["visit_id"])
    publisher.publish(event("booking.tutor_visit_cancelled",
                            {**data, "previous_status": "confirmed", "reason": "rain"}))
    reversed_ = accrued(maker, data["visit_id"], "reversed")
    assert reversed_["amount_fen"] == 20_000
    budgets = maker.get(f"/v1/funding/budgets?term={TERM}").json()["items"]
    fiscal = next(b for b in budgets if b["source"] == "fiscal_subsidy")
    assert fiscal["balance_fen"] == 1_000_000 and fiscal["subsidies_fen"] == 0


def test_funding_is_idempotent_and_bad_input_names_the_field(maker):
    body = {"term": TERM, "source": "service_fees", "amount_fen": 5_000, "memo": "课后服务费"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = maker.post("/v1/funding/budgets/fund", json=body, headers=key)
    again = maker.post("/v1/funding/budgets/fund", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json()["posting_id"] == again.json()["posting_id"]
    budgets = maker.get(f"/v1/funding/budgets?term={TERM}").json()["items"]
    assert next(b for b in budgets if b["source"] == "service_fees")["balance_fen"] == 5_000
    bad = maker.post("/v1/funding/budgets/fund", json={**body, "amount_fen": 1.5,
                                                       "source": "lottery"})
    assert set(problem(bad, 422)["errors"]) == {"amount_fen", "source"}
    over = maker.post("/v1/funding/budgets/transfer", json={
        "from_term": TERM, "from_source": "service_fees", "to_term": TERM,
        "to_source": "fiscal_subsidy", "amount_fen": 5_001, "memo": "top up"})
    refused = problem(over, 409)
    assert refused["code"] == "insufficient-funds" and "5001" in refused["detail"]
    problem(maker.get("/v1/funding/budgets?term=autumn"), 422)
    problem(maker.get("/v1/funding/accounts/budget|elsewhere|2026-autumn|service_fees"), 404)


def test_payouts_maker_checker_reconciliation_and_exports(maker, checker, district,
                                                          publisher):
    setup_money(maker)
    first, second = visit(district, "tut_a", 2), visit(district, "tut_b", 1)
    for data in (first, second):
        confirm(publisher, data)
        accrued(maker, data["visit_id"])
    approval = checker.post("/v1/funding/accruals/approve", json={"term": TERM})
    assert approval.json()["count"] == 2
    run = maker.post("/v1/funding/payout-runs", json={"term": TERM, "note": "十二月"})
    assert run.status_code == 201, run.text
    run_id = run.json()["run_id"]
    own = problem(maker.post(f"/v1/funding/payout-runs/{run_id}/approve"), 403)
    assert own["code"] == "maker-checker"
    problem(maker.get(f"/v1/funding/payout-runs/{run_id}/file"), 409)  # not exported yet
    assert checker.post(f"/v1/funding/payout-runs/{run_id}/approve").json()["state"] == \
        "approved"
    exported = maker.post(f"/v1/funding/payout-runs/{run_id}/export").json()
    assert exported["state"] == "exported" and exported["total_fen"] == 30_000
    file = maker.get(f"/v1/funding/payout-runs/{run_id}/file")
    assert file.headers["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(file.content.decode("utf-8-sig"))))
    refs = {row["payee_id"]: row["reference"] for row in lines}
    assert maker.get(f"/v1/funding/payout-runs/{run_id}/file").content == file.content

    statement = ("日期,reference,amount,payee\r\n"
                 f"2026-12-01,{refs['tut_a']},200.00,老师 tut_a\r\n"
                 f"2026-12-01,{refs['tut_b']},99.00,老师 tut_b\r\n"
                 "2026-12-01,KPNOTOURS00-00009,12.34,someone\r\n")
    problem(maker.post("/v1/funding/statements", data=statement.encode(),
                       headers={"Content-Type": "application/json"}), 415)
    report = maker.post("/v1/funding/statements", data=statement.encode(),
                        headers={"Content-Type": "text/csv; charset=utf-8"})
    assert report.status_code == 201, report.text
    findings = report.json()["findings"]
    assert {kind: [f["reference"] for f in items] for kind, items in findings.items()} == {
        "matched": [refs["tut_a"]], "amount_mismatch": [refs["tut_b"]],
        "unknown_reference": ["KPNOTOURS00-00009"]}
    assert report.json()["matched_fen"] == 20_000
    sent = maker.get("/v1/funding/payout-lines?status=sent").json()["items"]
    assert [line["reference"] for line in sent] == [refs["tut_b"]]  # only the match is paid
    assert maker.get(f"/v1/funding/accruals/{first['visit_id']}").json()["status"] == "paid"
    assert maker.get(f"/v1/funding/accruals/{second['visit_id']}").json()["status"] == \
        "in_transit"
    bad = maker.post("/v1/funding/statements", data=b"reference,amount\nKP1,12.345\n",
                     headers={"Content-Type": "text/csv"})
    assert "line 1.amount" in problem(bad, 422)["errors"]

    xlsx = maker.get(f"/v1/funding/reports/{TERM}/xlsx")
    assert xlsx.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    rows = list(book["By tutor"].iter_rows(values_only=True))
    totals = dict(zip(rows[0], rows[-1], strict=True))
    trial = maker.get(f"/v1/funding/trial-balance/{TERM}").json()
    assert trial["total_fen"] == 0
    kinds: dict[str, int] = {}
    for account in trial["accounts"]:
        kinds[account["kind"]] = kinds.get(account["kind"], 0) + account["balance_fen"]
    assert totals["subsidy_fen"] == kinds["payable"] + kinds["transit"] + kinds["paid"] == 30_000
    assert totals["paid_fen"] == kinds["paid"] == 20_000
    sources = list(book["By source"].iter_rows(values_only=True))
    assert dict(zip(sources[0], sources[-1], strict=True))["balance_fen"] == kinds["budget"]
    as_csv = maker.get(f"/v1/funding/reports/{TERM}/csv?by=school")
    assert as_csv.headers["Content-Type"].startswith("text/csv")
    assert "TOTAL" in as_csv.content.decode("utf-8-sig")
    assert maker.get(f"/v1/funding/reports/{TERM}").json()["ledger"]["agrees"] is True
    stm = report.json()["statement_id"]
    assert maker.get(f"/v1/funding/statements/{stm}/xlsx").status_code == 200
    other = checker.get(f"/v1/funding/payout-runs/{run_id}")
    assert other.status_code == 200


def signed(district, sub):
    """The actor as the gateway sends it: funding verifies the signature before anything."""
    return sign(Actor(sub=sub, role="finance", org=district),
                actor_key(os.environ["KEPU_JWT_SECRET"]))


def test_a_retry_after_a_gateway_timeout_creates_no_second_card_or_run(
        maker, checker, district, publisher, rpc):
    """The gateway forgets a key whose call failed, so the retry reaches funding again."""
    actor = signed(district, "maker-rpc")
    card = {"effective_from": "2026-09-01", "rates": {"senior": 10_000}}
    first = rpc.funding.create_rate_card(actor, card, "card-key")
    assert rpc.funding.create_rate_card(actor, card, "card-key") == first
    with pytest.raises(Conflict):  # another request for the same day is refused
        rpc.funding.create_rate_card(actor, card, "another-key")
    fund = {"term": TERM, "source": "fiscal_subsidy", "amount_fen": 100_000, "memo": "m"}
    assert rpc.funding.fund_budget(actor, fund, "fund-key") == \
        rpc.funding.fund_budget(actor, fund, "fund-key")
    data = visit(district, "tut_r", 1)
    confirm(publisher, data)
    accrued(maker, data["visit_id"])
    assert checker.post("/v1/funding/accruals/approve", json={"term": TERM}).json()["count"] == 1
    run = rpc.funding.create_payout_run(actor, {"term": TERM}, "run-key")
    again = rpc.funding.create_payout_run(actor, {"term": TERM}, "run-key")
    assert again["run_id"] == run["run_id"] and again["total_fen"] == 10_000
    assert [r["run_id"] for r in maker.get("/v1/funding/payout-runs").json()["items"]] == [
        run["run_id"]]
    budgets = maker.get(f"/v1/funding/budgets?term={TERM}").json()["items"]
    assert next(b for b in budgets if b["source"] == "fiscal_subsidy")["funded_fen"] == 100_000
    with pytest.raises(Forbidden):  # an actor the gateway did not sign is refused
        rpc.funding.create_rate_card({"sub": "x", "role": "finance", "org": district}, card)


def test_a_statement_amount_of_thousands_of_digits_is_a_422_naming_the_cell(maker):
    for cell in ("9" * 5_000, "NaN", "inf", "1e400"):
        for column in ("amount", "amount_fen"):
            bad = maker.post("/v1/funding/statements",
                             data=f"reference,{column}\nKP1,{cell}\n".encode(),
                             headers={"Content-Type": "text/csv"})
            body = problem(bad, 422)
            assert set(body["errors"]) == {"line 1.amount"}
            assert body["errors"]["line 1.amount"][0].startswith(f"column 2 ('{column}')")
            assert len(bad.content) < 1_000  # the cell is never echoed in full
