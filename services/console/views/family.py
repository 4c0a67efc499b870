"""The public family (亲子) pages: find a session, verify a mobile, book, and the booking's
manage page with its e-ticket — no account, phone-first.

The verification pass sits in the console's signed session cookie for this browser only;
the manage page is reached by its signed token (the link in the ticket SMS). Texts go
through the console's gettext catalogues like every page, in the guardian's language (the
link's `lang`, else the cookie, else zh-CN). Every rule (codes, limits, holds) is the
API's; this only presents it.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from services.console import i18n
from services.console.api import ApiProblem
from services.console.app import _
from services.console.views.common import Form, api, items_of
from services.contracts.venues import CATEGORIES  # the session categories, defined once

bp = Blueprint("family", __name__)



def _language() -> str:
    """The guardian's choice in the link (`?lang=`), else the cookie's, as on parents' pages."""
    wanted = request.args.get("lang") or request.form.get("lang")
    if wanted in i18n.LANGUAGES:
        g.lang = wanted
    return str(g.lang)


def _kept() -> dict[str, str]:
    """`lang` to carry on a redirect when this request named it (the cookie needs nothing)."""
    wanted = request.args.get("lang") or request.form.get("lang")
    return {"lang": wanted} if wanted in i18n.LANGUAGES else {}


def _mask(mobile: str) -> str:
    return f"{mobile[:3]}****{mobile[-4:]}" if len(mobile) >= 7 else "****"


@bp.get("/family")
def sessions() -> Any:
    _language()
    params = {k: v for k, v in request.args.items()
              if k in ("from", "category", "near", "cursor") and v}
    if request.args.get("free"):
        params["free"] = "true"
    try:
        items, cursor = items_of(api().get("/v1/family/sessions", params=params, auth=False))
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        items, cursor = [], None
    return render_template("family/sessions.html", items=items, cursor=cursor,
                           categories=CATEGORIES, args=request.args)


def _session_or_404(session_id: str) -> dict[str, Any] | None:
    try:
        return api().get(f"/v1/family/sessions/{session_id}", auth=False)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return None


def _book_page(session_id: str, form: Form | None = None, step: str | None = None,
               status: int = 200) -> Any:
    _language()
    item = _session_or_404(session_id)
    if item is None:
        message = _("There is no such session.")
        return render_template("error.html", status=404, message=message), 404
    state = session.get("family") or {}
    if step is None:
        step = "book" if state.get("verification") else (
            "code" if state.get("mobile") else "mobile")
    return render_template("family/book.html", item=item, form=form or Form(),
                           step=step, masked=_mask(state.get("mobile", ""))), status


@bp.get("/family/sessions/<session_id>")
def book_page(session_id: str) -> Any:
    return _book_page(session_id)


@bp.post("/family/sessions/<session_id>/code")
def send_code(session_id: str) -> Any:
    _language()
    form = Form.posted()
    mobile = i18n.fold(str(form.get("mobile"))).replace(" ", "").replace("-", "")
    try:
        api().post("/v1/family/codes", json={"mobile": mobile}, auth=False)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        form.refused(exc)
        form.errors.setdefault("mobile", exc.detail)
        return _book_page(session_id, form, "mobile", exc.status)
    session["family"] = {"mobile": mobile}
    return redirect(url_for("family.book_page", session_id=session_id, **_kept()))


@bp.post("/family/sessions/<session_id>/verify")
def verify(session_id: str) -> Any:
    _language()
    form = Form.posted()
    state = session.get("family") or {}
    if not state.get("mobile"):
        return redirect(url_for("family.book_page", session_id=session_id, **_kept()))
    try:
        answer = api().post("/v1/family/verifications", auth=False, json={
            "mobile": state["mobile"], "code": i18n.fold(str(form.get("code"))).strip()})
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        form.errors["code"] = exc.detail
        return _book_page(session_id, form, "code", exc.status)
    session["family"] = {**state, "verification": answer["verification"]}
    return redirect(url_for("family.book_page", session_id=session_id, **_kept()))


@bp.post("/family/sessions/<session_id>/restart")
def restart(session_id: str) -> Any:
    _language()
    session.pop("family", None)
    return redirect(url_for("family.book_page", session_id=session_id, **_kept()))


@bp.post("/family/sessions/<session_id>/book")
def book(session_id: str) -> Any:
    _language()
    form = Form.posted()
    state = session.get("family") or {}
    if not state.get("verification"):
        return redirect(url_for("family.book_page", session_id=session_id, **_kept()))
    names = [n.strip() for n in i18n.clean_text(str(form.get("child_names") or ""))
             .replace("，", ",").split(",") if n.strip()]
    body = {"verification": state["verification"], "adults": _count(form, "adults"),
            "children": _count(form, "children"), "child_names": names,
            "language": g.lang if g.lang in ("zh-CN", "en") else "zh-CN"}
    try:
        made = api().post(f"/v1/family/sessions/{session_id}/bookings", json=body,
                          auth=False, creates=True)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        if exc.status == 403:  # the pass expired: verify again
            session["family"] = {"mobile": state["mobile"]}
        form.refused(exc)
        return _book_page(session_id, form, None, exc.status)
    return redirect(url_for("family.booking", token=made["manage_token"], **_kept()))


def _count(form: Form, name: str) -> int:
    text = i18n.fold(str(form.get(name) or "0"))
    return int(text) if text.isdigit() and len(text) < 3 else -1


def _booking_page(token: str, problem: ApiProblem | None = None) -> Any:
    _language()
    try:
        item = api().get(f"/v1/family/bookings/{token}", auth=False)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return render_template("error.html", status=exc.status,
                               message=_("This link is not valid or has expired.")), exc.status
    return render_template("family/booking.html", item=item, token=token,
                           problem=problem), (problem.status if problem else 200)


@bp.get("/family/bookings/<token>")
def booking(token: str) -> Any:
    return _booking_page(token)


@bp.post("/family/bookings/<token>/<action>")
def act(token: str, action: str) -> Any:
    _language()
    if action not in ("confirm", "cancel"):
        return _booking_page(token)
    try:
        api().post(f"/v1/family/bookings/{token}/{action}", auth=False)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return _booking_page(token, exc)
    return redirect(url_for("family.booking", token=token, **_kept()))
