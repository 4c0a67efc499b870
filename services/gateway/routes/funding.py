"""Funding routes: budgets, ledger, rate cards, accruals, payout runs, reconciliation, reports.

Every route is for the `finance` role only (admins included are refused: finance data is
the district bureau's); the service checks the caller's district again. Every creating
POST passes the Idempotency-Key on (`call.request_key`): the service binds it, so a retry
after a gateway timeout never creates a second posting, card, run or statement.
"""

from __future__ import annotations

from typing import Any

from services.contracts.funding import (
    AccountQuery,
    AccountView,
    AccrualQuery,
    AccrualView,
    BalanceQuery,
    BudgetQuery,
    BudgetView,
    EntryQuery,
    EntryView,
    FindingQuery,
    FindingView,
    FundRequest,
    PayoutLineQuery,
    PayoutLineView,
    PayoutRunQuery,
    PayoutRunRequest,
    PayoutRunView,
    PostingView,
    RateCardQuery,
    RateCardRequest,
    RateCardView,
    RecoverRequest,
    ReportCsvQuery,
    ReportView,
    ReverseRequest,
    SelectionAnswer,
    StatementQuery,
    StatementView,
    TransferRequest,
    TrialBalanceView,
    VisitSelection,
)
from services.gateway.downloads import download
from services.gateway.problems import Problem
from services.gateway.routing import Call, route

FINANCE = ("finance",)
TAG = "funding"
STATEMENT_MAX_BODY = 32 << 20  # a term of 100,000 payouts is about 5 MB of CSV
STATEMENT_TIMEOUT_S = 300  # a term of 100,000 payouts takes a while on nx-27017


def _args(call: Call) -> dict[str, Any]:
    return call.request.args.to_dict()


# -- budgets and the ledger ---------------------------------------------------------------
@route("POST", "/v1/funding/budgets/fund", roles=FINANCE, tag=TAG, body=FundRequest,
       response=PostingView, status=201, creates=True)
def fund_budget(call: Call) -> Any:
    """Fund a term budget from a source (财政补贴, 服务性收费, 代收费)."""
    posting = call.rpc.funding.fund_budget(call.actor, call.body, call.request_key)
    call.headers["Location"] = f"/v1/funding/postings/{posting['posting_id']}"
    return posting


@route("POST", "/v1/funding/budgets/transfer", roles=FINANCE, tag=TAG, body=TransferRequest,
       response=PostingView, status=201, creates=True)
def transfer_budget(call: Call) -> Any:
    """Move money from one budget (term, source) to another; refused if it cannot cover it."""
    posting = call.rpc.funding.transfer_budget(call.actor, call.body, call.request_key)
    call.headers["Location"] = f"/v1/funding/postings/{posting['posting_id']}"
    return posting


@route("GET", "/v1/funding/budgets", roles=FINANCE, tag=TAG, query=BudgetQuery,
       response=BudgetView, many=True)
def list_budgets(call: Call) -> Any:
    """A term's budgets per source: balance, funded, transferred, spent on subsidies."""
    return call.rpc.funding.budgets(call.actor, _args(call))


@route("GET", "/v1/funding/postings/<posting_id>", roles=FINANCE, tag=TAG,
       response=PostingView)
def get_posting(call: Call) -> Any:
    """One posting with its entries and, if refused, the reason."""
    return call.rpc.funding.get_posting(call.actor, call.path["posting_id"])


@route("POST", "/v1/funding/postings/<posting_id>/reverse", roles=FINANCE, tag=TAG,
       body=ReverseRequest, response=PostingView, status=201, creates=True)
def reverse_posting(call: Call) -> Any:
    """Correct a funding or transfer by its reversal (the ledger is append-only)."""
    return call.rpc.funding.reverse_posting(call.actor, call.path["posting_id"], call.body,
                                            call.request_key)


@route("GET", "/v1/funding/accounts", roles=FINANCE, tag=TAG, query=AccountQuery,
       response=AccountView, many=True)
def list_accounts(call: Call) -> Any:
    """Ledger accounts of the district with their balances."""
    return call.rpc.funding.list_accounts(call.actor, _args(call))


@route("GET", "/v1/funding/accounts/<account_id>", roles=FINANCE, tag=TAG,
       query=BalanceQuery, response=AccountView)
def get_account(call: Call) -> Any:
    """One account; with `at`, its balance at that time (the sum of its entries up to it)."""
    return call.rpc.funding.get_account(call.actor, call.path["account_id"], _args(call))


@route("GET", "/v1/funding/accounts/<account_id>/entries", roles=FINANCE, tag=TAG,
       query=EntryQuery, response=EntryView, many=True)
def account_entries(call: Call) -> Any:
    """The full entry history of an account, oldest first, with the running balance."""
    return call.rpc.funding.account_entries(call.actor, call.path["account_id"], _args(call))


@route("GET", "/v1/funding/trial-balance/<term>", roles=FINANCE, tag=TAG, query=BalanceQuery,
       response=TrialBalanceView)
def trial_balance(call: Call) -> Any:
    """Every account of a term with its balance, now or at `at`; the total is zero."""
    return call.rpc.funding.trial_balance(call.actor, {**_args(call), "term": call.path["term"]})


# -- rate cards ---------------------------------------------------------------------------
@route("POST", "/v1/funding/rate-cards", roles=FINANCE, tag=TAG, body=RateCardRequest,
       response=RateCardView, status=201, creates=True)
def create_rate_card(call: Call) -> Any:
    """Publish a rate card: subsidy per hour by tutor level, in force from a date."""
    return call.rpc.funding.create_rate_card(call.actor, call.body, call.request_key)


@route("GET", "/v1/funding/rate-cards", roles=FINANCE, tag=TAG, query=RateCardQuery,
       response=RateCardView, many=True)
def list_rate_cards(call: Call) -> Any:
    """All rate cards, or (with `on`) the one in force on a day."""
    return call.rpc.funding.rate_cards(call.actor, _args(call))


# -- accruals -----------------------------------------------------------------------------
@route("GET", "/v1/funding/accruals", roles=FINANCE, tag=TAG, query=AccrualQuery,
       response=AccrualView, many=True)
def list_accruals(call: Call) -> Any:
    """Tutor visit subsidies: awaiting approval, unfunded, paid, reversed..."""
    return call.rpc.funding.list_accruals(call.actor, _args(call))


@route("GET", "/v1/funding/accruals/<visit_id>", roles=FINANCE, tag=TAG, response=AccrualView)
def get_accrual(call: Call) -> Any:
    """The subsidy of one tutor visit."""
    return call.rpc.funding.get_accrual(call.actor, call.path["visit_id"])


@route("POST", "/v1/funding/accruals/approve", roles=FINANCE, tag=TAG, body=VisitSelection,
       response=SelectionAnswer)
def approve_accruals(call: Call) -> Any:
    """Approve subsidies awaiting approval: the listed visits, or all of a term."""
    return call.rpc.funding.approve_accruals(call.actor, call.body)


@route("POST", "/v1/funding/accruals/retry", roles=FINANCE, tag=TAG, body=VisitSelection,
       response=SelectionAnswer)
def retry_accruals(call: Call) -> Any:
    """Accrue unfunded or capped visits again, after funding or a new rate card."""
    return call.rpc.funding.retry_accruals(call.actor, call.body)


@route("POST", "/v1/funding/accruals/<visit_id>/recover", roles=FINANCE, tag=TAG,
       body=RecoverRequest, response=AccrualView)
def recover_clawback(call: Call) -> Any:
    """Record that a tutor repaid the subsidy of a visit cancelled after payout."""
    return call.rpc.funding.recover_clawback(call.actor, call.path["visit_id"], call.body)


# -- payout runs --------------------------------------------------------------------------
@route("POST", "/v1/funding/payout-runs", roles=FINANCE, tag=TAG, body=PayoutRunRequest,
       response=PayoutRunView, status=201, creates=True)
def create_payout_run(call: Call) -> Any:
    """Gather a term's approved subsidies into a payout run (one line per tutor)."""
    run = call.rpc.funding.create_payout_run(call.actor, call.body, call.request_key)
    call.headers["Location"] = f"/v1/funding/payout-runs/{run['run_id']}"
    return run


@route("GET", "/v1/funding/payout-runs", roles=FINANCE, tag=TAG, query=PayoutRunQuery,
       response=PayoutRunView, many=True)
def list_payout_runs(call: Call) -> Any:
    """Payout runs of the district."""
    return call.rpc.funding.list_payout_runs(call.actor, _args(call))


@route("GET", "/v1/funding/payout-runs/<run_id>", roles=FINANCE, tag=TAG,
       response=PayoutRunView)
def get_payout_run(call: Call) -> Any:
    """One payout run."""
    return call.rpc.funding.get_payout_run(call.actor, call.path["run_id"])


@route("GET", "/v1/funding/payout-runs/<run_id>/lines", roles=FINANCE, tag=TAG,
       query=PayoutLineQuery, response=PayoutLineView, many=True)
def payout_run_lines(call: Call) -> Any:
    """The lines of a payout run, each with its bank reference."""
    return call.rpc.funding.payout_run_lines(call.actor, call.path["run_id"], _args(call))


@route("POST", "/v1/funding/payout-runs/<run_id>/approve", roles=FINANCE, tag=TAG,
       response=PayoutRunView)
def approve_payout_run(call: Call) -> Any:
    """Approve a payout run; its creator may not (maker-checker)."""
    return call.rpc.funding.approve_payout_run(call.actor, call.path["run_id"])


@route("POST", "/v1/funding/payout-runs/<run_id>/export", roles=FINANCE, tag=TAG,
       response=PayoutRunView)
def export_payout_run(call: Call) -> Any:
    """Export an approved run: posts it and freezes it; then download its file."""
    return call.rpc.funding.export_payout_run(call.actor, call.path["run_id"])


@route("POST", "/v1/funding/payout-runs/<run_id>/discard", roles=FINANCE, tag=TAG,
       response=PayoutRunView)
def discard_payout_run(call: Call) -> Any:
    """Discard a run not yet exported; its subsidies can go into another run."""
    return call.rpc.funding.discard_payout_run(call.actor, call.path["run_id"])


@route("GET", "/v1/funding/payout-runs/<run_id>/file", roles=FINANCE, tag=TAG,
       raw_response=True)
def payout_file(call: Call) -> Any:
    """The bank payout file (CSV) of an exported run; the same bytes every time."""
    return download(call.rpc.funding.payout_file(call.actor, call.path["run_id"]))


@route("GET", "/v1/funding/payout-lines", roles=FINANCE, tag=TAG, query=PayoutLineQuery,
       response=PayoutLineView, many=True)
def list_payout_lines(call: Call) -> Any:
    """Payout lines of all runs; `status=sent` lists those no statement has shown paid."""
    return call.rpc.funding.payout_lines(call.actor, _args(call))


# -- reconciliation -----------------------------------------------------------------------
@route("POST", "/v1/funding/statements", roles=FINANCE, tag=TAG, response=StatementView,
       status=201, creates=True, content_types=("text/csv",), max_body=STATEMENT_MAX_BODY)
def import_statement(call: Call) -> Any:
    """Import a bank statement (CSV) and reconcile it against the payouts sent."""
    if not call.body:
        raise Problem(400, "Missing body", "send the bank statement as text/csv",
                      {"body": ["a CSV bank statement is required"]}, kind="missing-body")
    report = call.rpc.call("funding", "import_statement", call.actor, call.body["text"],
                           call.request_key, timeout=STATEMENT_TIMEOUT_S)
    call.headers["Location"] = f"/v1/funding/statements/{report['statement_id']}"
    return report


@route("GET", "/v1/funding/statements", roles=FINANCE, tag=TAG, query=StatementQuery,
       response=StatementView, many=True)
def list_statements(call: Call) -> Any:
    """Imported bank statements with their reconciliation counts."""
    return call.rpc.funding.list_statements(call.actor, _args(call))


@route("GET", "/v1/funding/statements/<statement_id>", roles=FINANCE, tag=TAG,
       response=StatementView)
def get_statement(call: Call) -> Any:
    """A statement's reconciliation report: matched, mismatched, unknown, not on statement."""
    return call.rpc.funding.get_statement(call.actor, call.path["statement_id"])


@route("GET", "/v1/funding/statements/<statement_id>/findings", roles=FINANCE, tag=TAG,
       query=FindingQuery, response=FindingView, many=True)
def statement_findings(call: Call) -> Any:
    """Every finding of a statement, page by page, optionally of one kind."""
    return call.rpc.funding.statement_findings(call.actor, call.path["statement_id"],
                                               _args(call))


@route("GET", "/v1/funding/statements/<statement_id>/csv", roles=FINANCE, tag=TAG,
       raw_response=True)
def statement_csv(call: Call) -> Any:
    """The reconciliation report as CSV."""
    return download(call.rpc.funding.statement_file(call.actor, call.path["statement_id"],
                                                     "csv"))


@route("GET", "/v1/funding/statements/<statement_id>/xlsx", roles=FINANCE, tag=TAG,
       raw_response=True)
def statement_xlsx(call: Call) -> Any:
    """The reconciliation report as an Excel workbook."""
    return download(call.rpc.funding.statement_file(call.actor, call.path["statement_id"],
                                                     "xlsx"))


# -- reports ------------------------------------------------------------------------------
@route("GET", "/v1/funding/reports/<term>", roles=FINANCE, tag=TAG, response=ReportView)
def term_report(call: Call) -> Any:
    """A term's money by source, school and tutor, with the ledger totals it agrees with."""
    return call.rpc.funding.term_report(call.actor, call.path["term"])


@route("GET", "/v1/funding/reports/<term>/csv", roles=FINANCE, tag=TAG, query=ReportCsvQuery,
       raw_response=True)
def term_report_csv(call: Call) -> Any:
    """One view of the term report (`by` source, school or tutor) as CSV."""
    return download(call.rpc.funding.report_file(call.actor, call.path["term"], "csv",
                                                  _args(call)))


@route("GET", "/v1/funding/reports/<term>/xlsx", roles=FINANCE, tag=TAG, raw_response=True)
def term_report_xlsx(call: Call) -> Any:
    """The term report as an Excel workbook: summary, by source, by school, by tutor."""
    return download(call.rpc.funding.report_file(call.actor, call.path["term"], "xlsx", {}))
