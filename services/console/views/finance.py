"""Finance: budgets per source, funding and transfers, rate cards, accruals awaiting
approval, payout runs (created by one person, approved by another, exported), bank
statements and their findings, term reports."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, redirect, render_template, request, url_for

from services.console import i18n
from services.console.api import ApiProblem, Download
from services.console.app import _
from services.console.views.common import (
    Form,
    api,
    is_htmx,
    items_of,
    names_of,
    next_url,
    page_args,
    requires,
)
from services.contracts.terms import term_of

bp = Blueprint("finance", __name__, url_prefix="/finance")
SOURCES = ("fiscal_subsidy", "service_fees", "collected_fees")
LEVELS = ("junior", "intermediate", "senior", "expert")
FINANCE = ("finance",)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def current_term(today: date | None = None) -> str:
    """The school term today falls in, as the platform counts terms (contracts/terms.py)."""
    return term_of(today or datetime.now(SHANGHAI).date())


def term_arg() -> str:
    return i18n.fold(request.values.get("term")) or current_term()


def _fen(form: Form, name: str) -> int | None:
    try:
        value = i18n.fen_from_yuan(str(form.get(name)))
    except ValueError:
        form.fail(name, _("Enter an amount in yuan, e.g. 12.50."))
        return None
    if value <= 0:
        form.fail(name, _("Enter an amount above zero."))
        return None
    return value


def download(answer: Download) -> Response:
    headers = {"Content-Disposition": answer.disposition} if answer.disposition else {}
    return Response(answer.content, content_type=answer.content_type, headers=headers)


@bp.route("/", methods=["GET", "POST"])
@requires(*FINANCE)
def budgets() -> Any:
    term = term_arg()
    form = Form.posted() if request.method == "POST" else Form({"term": term})
    notice = None
    if request.method == "POST":
        notice = _fund_or_transfer(form)
    problem = None
    try:
        rows, _c = items_of(api().get("/v1/funding/budgets", params={"term": term}))
    except ApiProblem as exc:
        rows, problem = [], exc
    status = 422 if (form.errors or form.message or problem) else 200
    return render_template("finance/budgets.html", rows=rows, term=term, form=form,
                           sources=SOURCES, notice=notice, problem=problem), status


def _fund_or_transfer(form: Form) -> str | None:
    amount = _fen(form, "amount")
    memo = i18n.clean_text(form.get("memo"))
    if not memo:
        form.fail("memo", _("Say what the money is for."))
    if not form.ok:
        return None
    if form.get("action") == "transfer":
        path, body = "/v1/funding/budgets/transfer", {
            "from_term": form.get("term"), "from_source": form.get("source"),
            "to_term": form.get("to_term") or form.get("term"),
            "to_source": form.get("to_source"), "amount_fen": amount, "memo": memo}
    else:
        path, body = "/v1/funding/budgets/fund", {
            "term": form.get("term"), "source": form.get("source"), "amount_fen": amount,
            "memo": memo}
    try:
        api().post(path, json=body, creates=True)
    except ApiProblem as exc:
        form.refused(exc, {"amount_fen": "amount", "term": "term", "source": "source",
                           "memo": "memo", "to_source": "to_source", "to_term": "to_term",
                           "from_term": "term", "from_source": "source"})
        return None
    return _("Done: %(amount)s.", amount=i18n.yuan(amount))


@bp.route("/rate-cards", methods=["GET", "POST"])
@requires(*FINANCE)
def rate_cards() -> Any:
    form = Form.posted() if request.method == "POST" else Form()
    notice = None
    if request.method == "POST":
        rates = {}
        for level in LEVELS:
            if i18n.fold(form.get(f"rate_{level}")):
                value = _fen(form, f"rate_{level}")
                if value is not None:
                    rates[level] = value
        if not rates and form.ok:
            form.fail("rate_junior", _("Give at least one hourly rate."))
        if form.ok:
            try:
                api().post("/v1/funding/rate-cards", creates=True, json={
                    "effective_from": i18n.fold(form.get("effective_from")),
                    "rates": rates, "note": i18n.clean_text(form.get("note")) or None})
                form, notice = Form(), _("Rate card saved.")
            except ApiProblem as exc:
                form.refused(exc, {"effective_from": "effective_from", "note": "note",
                                   **{f"rates.{lv}": f"rate_{lv}" for lv in LEVELS}})
    rows, cursor = items_of(api().get("/v1/funding/rate-cards", params=page_args()))
    status = 422 if (form.errors or form.message) else 200
    return render_template("finance/rate_cards.html", rows=rows, form=form, levels=LEVELS,
                           notice=notice, next_url=next_url(cursor)), status


@bp.route("/accruals", methods=["GET", "POST"])
@requires(*FINANCE)
def accruals() -> Any:
    """Accruals awaiting approval, approved in bulk (the ticked ones, or the whole term)."""
    notice = problem = None
    if request.method == "POST":
        chosen = request.form.getlist("visit_ids")
        body = {"visit_ids": chosen} if chosen else {"term": term_arg()}
        retry = request.form.get("action") == "retry"
        try:
            answer = api().post("/v1/funding/accruals/" + ("retry" if retry else "approve"),
                                json=body)
            count = answer.get("count", 0) if isinstance(answer, dict) else 0
            notice = (_("Tried again: %(n)s.", n=count) if retry
                      else _("Approved: %(n)s.", n=count))
        except ApiProblem as exc:
            problem = exc
    status_filter = request.args.get("status") or "awaiting_approval"
    params = {**page_args(50), "status": status_filter, "term": term_arg()}
    rows, cursor = items_of(api().get("/v1/funding/accruals", params=params))
    template = "finance/_accruals.html" if is_htmx() else "finance/accruals.html"
    return render_template(template, rows=rows, notice=notice, problem=problem,
                           term=term_arg(), status=status_filter, next_url=next_url(cursor))


@bp.route("/payouts", methods=["GET", "POST"])
@requires(*FINANCE)
def payouts() -> Any:
    form = Form.posted() if request.method == "POST" else Form({"term": term_arg()})
    if request.method == "POST":
        try:
            run = api().post("/v1/funding/payout-runs", creates=True, json={
                "term": i18n.fold(form.get("term")),
                "note": i18n.clean_text(form.get("note")) or None})
            return redirect(url_for("finance.payout", run_id=run["run_id"]), code=303)
        except ApiProblem as exc:
            form.refused(exc, {"term": "term", "note": "note"})
    rows, cursor = items_of(api().get("/v1/funding/payout-runs", params=page_args()))
    status = 422 if (form.errors or form.message) else 200
    return render_template("finance/payouts.html", rows=rows, form=form,
                           next_url=next_url(cursor)), status


@bp.get("/payouts/<run_id>")
@requires(*FINANCE)
def payout(run_id: str, notice: str | None = None, problem: ApiProblem | None = None) -> Any:
    run = api().get(f"/v1/funding/payout-runs/{run_id}")
    lines, cursor = items_of(api().get(f"/v1/funding/payout-runs/{run_id}/lines",
                                       params=page_args(50)))
    names = names_of([run.get("created_by"), run.get("approved_by")])
    return render_template("finance/payout.html", run=run, lines=lines, notice=notice,
                           problem=problem, next_url=next_url(cursor), names=names), \
        (problem.status if problem else 200)


@bp.post("/payouts/<run_id>/<action>")
@requires(*FINANCE)
def payout_action(run_id: str, action: str) -> Any:
    """Approve (a second person), export (the bank file is then downloadable) or discard."""
    if action not in ("approve", "export", "discard"):
        return render_template("error.html", status=404, message=_("No such action.")), 404
    try:
        api().post(f"/v1/funding/payout-runs/{run_id}/{action}")
    except ApiProblem as exc:
        return payout(run_id, problem=exc)
    done = {"approve": _("Approved."), "export": _("Exported: the bank file is ready."),
            "discard": _("Discarded.")}[action]
    return payout(run_id, notice=done)


@bp.get("/payouts/<run_id>/file")
@requires(*FINANCE)
def payout_file(run_id: str) -> Any:
    return download(api().get(f"/v1/funding/payout-runs/{run_id}/file", raw=True))


@bp.route("/statements", methods=["GET", "POST"])
@requires(*FINANCE)
def statements() -> Any:
    form = Form()
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            form.fail("file", _("Choose the bank's CSV statement."))
        else:
            try:
                made = api().post("/v1/funding/statements", data=upload.read(), creates=True,
                                  content_type="text/csv")
                return redirect(url_for("finance.statement",
                                        statement_id=made["statement_id"]), code=303)
            except ApiProblem as exc:
                form.message = exc.detail
                for message in list(exc.field_errors().values())[:1]:
                    form.fail("file", message)
    rows, cursor = items_of(api().get("/v1/funding/statements", params=page_args()))
    status = 422 if (form.errors or form.message) else 200
    return render_template("finance/statements.html", rows=rows, form=form,
                           next_url=next_url(cursor)), status


@bp.get("/statements/<statement_id>")
@requires(*FINANCE)
def statement(statement_id: str) -> Any:
    item = api().get(f"/v1/funding/statements/{statement_id}")
    params = page_args(50)
    if request.args.get("kind"):
        params["kind"] = request.args["kind"]
    rows, cursor = items_of(api().get(f"/v1/funding/statements/{statement_id}/findings",
                                      params=params))
    return render_template("finance/statement.html", item=item, rows=rows,
                           kind=request.args.get("kind", ""), next_url=next_url(cursor))


@bp.get("/reports")
@requires(*FINANCE)
def reports() -> Any:
    term = term_arg()
    problem = None
    try:
        report = api().get(f"/v1/funding/reports/{term}")
    except ApiProblem as exc:
        report, problem = None, exc
    return render_template("finance/reports.html", report=report, term=term, problem=problem)


@bp.get("/reports/<term>.<kind>")
@requires(*FINANCE)
def report_file(term: str, kind: str) -> Any:
    if kind not in ("csv", "xlsx"):
        return render_template("error.html", status=404, message=_("No such file.")), 404
    params = {"view": request.args["view"]} if request.args.get("view") else None
    return download(api().get(f"/v1/funding/reports/{term}/{kind}", params=params, raw=True))
