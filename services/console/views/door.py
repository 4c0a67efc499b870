"""The venue's door: check a ticket in (camera scan or typed code) with what was paid, the
register of a family or training session, and the day's takings (CSV, XLSX).

The camera page needs the camera, which the console's default Permissions-Policy denies:
this page alone allows it for its own origin. Scanning is the browser's BarcodeDetector
where it exists (static/door-scan.js); typing the code always works.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, render_template, request

from services.console.api import ApiProblem
from services.console.app import _
from services.console.views.common import Form, api, items_of, next_url, page_args, requires, who

bp = Blueprint("door", __name__)



def methods() -> dict[str, str]:
    """The ways a family pays at the door, named in the reader's language."""
    return {"cash": _("Cash"), "wechat_pay": _("WeChat Pay"), "alipay": _("Alipay"),
            "card": _("Bank card")}


def _venue() -> str:
    return who()["org"]


@bp.route("/venue/check-in", methods=("GET", "POST"))
@requires("venue")
def check_in() -> Any:
    form = Form.posted() if request.method == "POST" else Form()
    result = None
    status = 200
    if request.method == "POST":
        body = {"code": str(form.get("code")).strip()}
        if form.get("method"):
            body["method"] = form.get("method")
        try:
            result = api().post(f"/v1/venues/{_venue()}/check-ins", json=body)
        except ApiProblem as exc:
            if exc.status >= 500:
                raise
            form.refused(exc, {"code": "code", "method": "method"})
            status = exc.status
    response = Response(render_template("door/check_in.html", form=form, result=result,
                                        methods=methods()), status=status)
    response.headers["Permissions-Policy"] = "camera=(self), microphone=(), geolocation=()"
    return response


@bp.get("/venue/sessions/<session_id>/register")
@requires("venue")
def register(session_id: str) -> Any:
    session = api().get(f"/v1/sessions/{session_id}")
    items, cursor = items_of(api().get(f"/v1/sessions/{session_id}/register",
                                       params=page_args(100)))
    return render_template("door/register.html", session=session, items=items,
                           next_url=next_url(cursor))


@bp.get("/venue/takings")
@requires("venue")
def takings() -> Any:
    day = request.args.get("day") or date.today().isoformat()
    form = request.args.get("format")
    if form in ("csv", "xlsx"):
        file = api().get(f"/v1/venues/{_venue()}/takings", params={"day": day, "format": form},
                         raw=True)
        return Response(file.content, content_type=file.content_type, headers={
            "Content-Disposition": file.disposition or f'attachment; filename="takings.{form}"'})
    try:
        report = api().get(f"/v1/venues/{_venue()}/takings", params={"day": day})
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        message = _("Enter a date as YYYY-MM-DD.")
        return render_template("error.html", status=exc.status, message=message), exc.status
    return render_template("door/takings.html", report=report, day=day, methods=methods())
