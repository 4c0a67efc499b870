"""Funding: budgets, ledger, rate cards, accruals, payouts and reconciliation (RPC payloads).

Money is always integer fen (分) in CNY, in fields ending `_fen`. A finance user acts for
the district named by their token's `org`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from services.contracts.common import (
    Day,
    EventData,
    Instant,
    Strict,
    Whole,
)
from services.contracts.registry import event
from services.contracts.terms import TERM_PATTERN
from services.contracts.venues import TUTOR_LEVELS

SOURCES = ("fiscal_subsidy", "service_fees", "collected_fees")
ACCOUNT_KINDS = ("source", "budget", "payable", "transit", "paid")
ACCRUAL_STATUSES = ("accruing", "unfunded", "capped", "awaiting_approval", "approved",
                    "in_transit", "paid", "reversing", "reversed", "clawback_due",
                    "recovered", "cancelled")
RUN_STATES = ("building", "draft", "approved", "exporting", "exported", "discarded", "failed")
LINE_STATUSES = ("draft", "sent", "paid", "discarded")
FINDING_KINDS = ("matched", "amount_mismatch", "unknown_reference", "duplicate_line",
                 "already_paid", "not_sent", "not_on_statement")
REPORT_VIEWS = ("source", "school", "tutor")

MAX_FEN = 10**12  # ten billion yuan: far above any district budget, far below int64
TERM = validate.Regexp(TERM_PATTERN, error="a term like 2026-autumn or 2027-spring")
FEN = validate.Range(min=1, max=MAX_FEN)
MEMO = validate.Length(min=1, max=500)
LIMIT = validate.Range(min=1, max=200)


class Fen(fields.Integer):
    """An amount in fen: an integer, never a float or a numeric string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


# -- budgets --------------------------------------------------------------------------
class FundRequest(Strict):
    """Money arrives in a district budget from a source for a term."""

    term = fields.String(required=True, validate=TERM)
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    amount_fen = Fen(required=True, validate=FEN)
    memo = fields.String(required=True, validate=MEMO)
    reference = fields.String(load_default=None, allow_none=True,
                              validate=validate.Length(max=100))


class TransferRequest(Strict):
    """Money moves from one budget (term, source) to another."""

    from_term = fields.String(required=True, validate=TERM)
    from_source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    to_term = fields.String(required=True, validate=TERM)
    to_source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    amount_fen = Fen(required=True, validate=FEN)
    memo = fields.String(required=True, validate=MEMO)

    @validates_schema
    def _not_to_itself(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("from_term"), data.get("from_source")) == (
                data.get("to_term"), data.get("to_source")):
            raise ValidationError("must differ from the budget the money comes from",
                                  "to_source")


class ReverseRequest(Strict):
    reason = fields.String(required=True, validate=MEMO)


class BudgetQuery(Strict):
    term = fields.String(required=True, validate=TERM)


class BudgetView(Strict):
    term = fields.String(required=True)
    source = fields.String(required=True)
    account_id = fields.String(required=True)
    balance_fen = Whole(required=True)
    funded_fen = Whole(required=True)
    transferred_fen = Whole(required=True)
    subsidies_fen = Whole(required=True)


# -- ledger ---------------------------------------------------------------------------
class EntryLine(Strict):
    account = fields.String(required=True)
    amount_fen = Whole(required=True)


class PostingView(Strict):
    posting_id = fields.String(required=True)
    state = fields.String(required=True)
    kind = fields.String(required=True)
    category = fields.String(required=True)
    district = fields.String(required=True)
    memo = fields.String(allow_none=True)
    created_at = Instant(required=True)
    applied_at = Instant(allow_none=True)
    entries = fields.List(fields.Nested(EntryLine), required=True)
    total_fen = Whole(required=True)
    refusal = fields.Dict(allow_none=True)
    reverses = fields.String(allow_none=True)
    reversed_by = fields.String(allow_none=True)
    refs = fields.Dict(allow_none=True)
    actor = fields.String(allow_none=True)


class AccountQuery(Strict):
    term = fields.String(validate=TERM)
    kind = fields.String(validate=validate.OneOf(ACCOUNT_KINDS))
    limit = Whole(load_default=50, validate=LIMIT)
    cursor = fields.String()


class BalanceQuery(Strict):
    at = Instant()


class AccountView(Strict):
    account_id = fields.String(required=True)
    kind = fields.String(required=True)
    district = fields.String(required=True)
    term = fields.String(required=True)
    source = fields.String(allow_none=True)
    tutor_id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    floor_fen = Whole(allow_none=True)
    balance_fen = Whole(required=True)
    at = Instant(allow_none=True)  # set when the balance is the one at a point in time


class EntryQuery(Strict):
    until = Instant()
    limit = Whole(load_default=50, validate=LIMIT)
    cursor = fields.String()


class EntryView(Strict):
    entry_id = fields.String(required=True)
    account = fields.String(required=True)
    amount_fen = Whole(required=True)
    balance_after_fen = Whole(required=True)
    at = Instant(required=True)
    posting_id = fields.String(required=True)
    kind = fields.String(required=True)
    category = fields.String(required=True)
    memo = fields.String(allow_none=True)


class TrialBalanceView(Strict):
    at = Instant(allow_none=True)
    accounts = fields.List(fields.Nested(AccountView), required=True)
    total_fen = Whole(required=True)


# -- rate cards -------------------------------------------------------------------------
class RateCardRequest(Strict):
    """Subsidy per hour by tutor level, in force from `effective_from` until the next card."""

    effective_from = Day(required=True)
    rates = fields.Dict(keys=fields.String(validate=validate.OneOf(TUTOR_LEVELS)),
                        values=Fen(validate=validate.Range(min=0, max=10_000_000)),
                        required=True, validate=validate.Length(min=1))
    cap_per_visit_fen = Fen(load_default=None, allow_none=True,
                            validate=validate.Range(min=0, max=MAX_FEN))
    cap_per_school_term_fen = Fen(load_default=None, allow_none=True,
                                  validate=validate.Range(min=0, max=MAX_FEN))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class RateCardQuery(Strict):
    on = Day()  # the card in force on that day


class RateCardView(Strict):
    rate_card_id = fields.String(required=True)
    district = fields.String(required=True)
    effective_from = fields.String(required=True)  # YYYY-MM-DD
    rates = fields.Dict(keys=fields.String(), values=Whole(), required=True)
    cap_per_visit_fen = Whole(allow_none=True)
    cap_per_school_term_fen = Whole(allow_none=True)
    note = fields.String(allow_none=True)
    created_by = fields.String(required=True)
    created_at = Instant(required=True)


# -- accruals ---------------------------------------------------------------------------
class AccrualQuery(Strict):
    term = fields.String(validate=TERM)
    status = fields.String(validate=validate.OneOf(ACCRUAL_STATUSES))
    tutor_id = fields.String(validate=validate.Length(min=1, max=64))
    school_id = fields.String(validate=validate.Length(min=1, max=64))
    limit = Whole(load_default=50, validate=LIMIT)
    cursor = fields.String()


class VisitSelection(Strict):
    """Either the listed visits, or every one of a term (`visit_ids` wins when both)."""

    visit_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)),
                            validate=validate.Length(min=1, max=1000))
    term = fields.String(validate=TERM)

    @validates_schema
    def _one_of(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("visit_ids") and not data.get("term"):
            raise ValidationError("give visit_ids or a term", "visit_ids")


class RecoverRequest(Strict):
    memo = fields.String(required=True, validate=MEMO)


class AccrualView(Strict):
    visit_id = fields.String(required=True)
    district = fields.String(required=True)
    term = fields.String(required=True)
    date = fields.String(required=True)
    school_id = fields.String(required=True)
    venue_id = fields.String(required=True)
    tutor_id = fields.String(required=True)
    tutor_name = fields.String(required=True)
    tutor_level = fields.String(required=True)
    hours = fields.Float(required=True)
    students = Whole(required=True)
    subject = fields.String(allow_none=True)
    status = fields.String(required=True)
    reason = fields.Dict(allow_none=True)  # {code, detail} when unfunded or capped
    amount_fen = Whole(allow_none=True)
    rate_fen_per_hour = Whole(allow_none=True)
    rate_card_id = fields.String(allow_none=True)
    capped_by = fields.String(allow_none=True)
    sources = fields.Dict(keys=fields.String(), values=Whole(), allow_none=True)
    posting_id = fields.String(allow_none=True)
    reversal_posting_id = fields.String(allow_none=True)
    run_id = fields.String(allow_none=True)
    approved_by = fields.String(allow_none=True)
    approved_at = Instant(allow_none=True)
    accrued_at = Instant(allow_none=True)
    paid_at = Instant(allow_none=True)
    reversed_at = Instant(allow_none=True)
    created_at = Instant(required=True)


class SelectionAnswer(Strict):
    """What a bulk action did: the visits it changed and those it left, with their status."""

    done = fields.List(fields.String(), required=True)
    skipped = fields.List(fields.Dict(), required=True)
    count = Whole(required=True)


# -- payout runs ------------------------------------------------------------------------
class PayoutRunRequest(Strict):
    term = fields.String(required=True, validate=TERM)
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))


class PayoutRunQuery(Strict):
    term = fields.String(validate=TERM)
    state = fields.String(validate=validate.OneOf(RUN_STATES))
    limit = Whole(load_default=50, validate=LIMIT)
    cursor = fields.String()


class PayoutLineQuery(Strict):
    status = fields.String(validate=validate.OneOf(LINE_STATUSES))
    limit = Whole(load_default=50, validate=LIMIT)
    cursor = fields.String()


class PayoutRunView(Strict):
    run_id = fields.String(required=True)
    code = fields.String(required=True)
    district = fields.String(required=True)
    term = fields.String(required=True)
    state = fields.String(required=True)
    note = fields.String(allow_none=True)
    lines = Whole(required=True)
    visits = Whole(required=True)
    total_fen = Whole(required=True)
    stale = fields.Boolean(required=True)
    stale_reason = fields.String(allow_none=True)
    created_by = fields.String(required=True)
    created_at = Instant(required=True)
    approved_by = fields.String(allow_none=True)
    approved_at = Instant(allow_none=True)
    exported_by = fields.String(allow_none=True)
    exported_at = Instant(allow_none=True)
    file_sha256 = fields.String(allow_none=True)


class PayoutLineView(Strict):
    reference = fields.String(required=True)
    run_id = fields.String(required=True)
    term = fields.String(required=True)
    tutor_id = fields.String(required=True)
    tutor_name = fields.String(required=True)
    amount_fen = Whole(required=True)
    visits = Whole(required=True)
    clawback_fen = Whole(required=True)
    status = fields.String(required=True)
    statement_id = fields.String(allow_none=True)
    paid_at = Instant(allow_none=True)


# -- reconciliation ---------------------------------------------------------------------
class StatementQuery(Strict):
    limit = Whole(load_default=50, validate=LIMIT)
    cursor = fields.String()


class FindingQuery(Strict):
    kind = fields.String(validate=validate.OneOf(FINDING_KINDS))
    limit = Whole(load_default=50, validate=LIMIT)
    cursor = fields.String()


class FindingView(Strict):
    kind = fields.String(required=True)
    line = Whole(allow_none=True)  # the statement line (1 = first after the header)
    reference = fields.String(allow_none=True)
    statement_amount_fen = Whole(allow_none=True)
    payout_amount_fen = Whole(allow_none=True)
    tutor_id = fields.String(allow_none=True)
    tutor_name = fields.String(allow_none=True)
    date = fields.String(allow_none=True)
    payee = fields.String(allow_none=True)
    note = fields.String(allow_none=True)


class StatementView(Strict):
    statement_id = fields.String(required=True)
    district = fields.String(required=True)
    state = fields.String(required=True)
    lines = Whole(required=True)
    total_fen = Whole(required=True)
    counts = fields.Dict(keys=fields.String(), values=Whole(), required=True)
    matched_fen = Whole(required=True)
    imported_by = fields.String(required=True)
    created_at = Instant(required=True)
    reconciled_at = Instant(allow_none=True)
    findings = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(FindingView)))
    truncated = fields.List(fields.String())


# -- reports ----------------------------------------------------------------------------
class ReportCsvQuery(Strict):
    by = fields.String(load_default="tutor", validate=validate.OneOf(REPORT_VIEWS))


class ReportView(Strict):
    term = fields.String(required=True)
    district = fields.String(required=True)
    generated_at = Instant(required=True)
    by_source = fields.List(fields.Dict(), required=True)
    by_school = fields.List(fields.Dict(), required=True)
    by_tutor = fields.List(fields.Dict(), required=True)
    totals = fields.Dict(required=True)
    ledger = fields.Dict(required=True)


# -- events ------------------------------------------------------------------------------
@event("funding.subsidy_paid", 1)
class SubsidyPaid(EventData):
    """A tutor visit's subsidy reached the tutor: its payout line was matched, amount and
    reference, on an imported bank statement (the accrual became `paid`). Not sent when a
    run is approved or exported: money sent is not money paid until the bank says so."""

    visit_id = fields.String(required=True)
    school_id = fields.String(required=True)
    # the district's id (`dis_…`); an accrual written before the district migration names
    # the district instead
    district_id = fields.String(required=True)
    term = fields.String(required=True, validate=TERM)
    amount_fen = Whole(required=True, validate=validate.Range(min=0, max=MAX_FEN))
    paid_at = Instant(required=True)
    tutor_id = fields.String(required=True)
    statement_id = fields.String(required=True)
    reference = fields.String(required=True)  # the payout line's bank reference
