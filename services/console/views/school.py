"""School staff: the course menu (课程菜单), claiming seats for classes picked from the
rosters, splitting a grade across sessions (分期分批), claims and consents, rosters and
tutor visits."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for

from services.console import i18n
from services.console.api import ApiProblem
from services.console.app import _
from services.console.views.common import (
    Form,
    api,
    items_of,
    next_url,
    page_args,
    requires,
    who,
    whole,
)
from services.contracts.venues import CATEGORIES  # the session categories, defined once

bp = Blueprint("school", __name__, url_prefix="/school")
NUMERALS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
            "初一": 7, "初二": 8, "初三": 9, "高一": 10, "高二": 11, "高三": 12}
GRADE = re.compile(r"^(初[一二三]|高[一二三]|[一二三四五六七八九])年级"
                   r"|^(\d{1,2})年级|^Grade ?(\d{1,2})", re.IGNORECASE)


def grade_of(label: str) -> int | None:
    """The grade a class label names: 五年级(2)班 → 5, 初二(1)班 → 8, Grade 4 B → 4."""
    text = i18n.normalise_label(label)
    for prefix in ("初一", "初二", "初三", "高一", "高二", "高三"):
        if text.startswith(prefix):
            return NUMERALS[prefix]
    match = GRADE.match(text)
    if not match:
        return None
    if match.group(1):
        return NUMERALS.get(match.group(1))
    return int(match.group(2) or match.group(3))


def school() -> dict[str, Any]:
    return api().get(f"/v1/schools/{who()['org']}")


def rosters() -> list[dict[str, Any]]:
    rows, _cursor = items_of(api().get(f"/v1/schools/{who()['org']}/rosters",
                                       params={"limit": 200}))
    return rows


# -- the course menu ---------------------------------------------------------------------
def _menu_query(place: dict[str, Any]) -> dict[str, Any]:
    args = request.args
    query: dict[str, Any] = page_args(30)
    query["from"] = args.get("from") or date.today().isoformat()
    if args.get("to"):
        query["to"] = args["to"]
    for name in ("grade", "category", "audience"):
        if args.get(name):
            query[name] = i18n.fold(args[name])
    if args.get("free"):
        query["free"] = "true"
    radius = i18n.fold(args.get("km", ""))
    if radius:
        location = place["location"]
        query["near"] = f"{location['lat']},{location['lon']}"
        query["radius_km"] = radius
    return query


@bp.get("/")
@requires("school")
def menu() -> Any:
    """The catalogue as this school sees it; `view=week` lays it out by day."""
    place = school()
    problem = None
    try:
        rows, cursor = items_of(api().get("/v1/sessions", params=_menu_query(place)))
    except ApiProblem as exc:
        rows, cursor, problem = [], None, exc
    view = "week" if request.args.get("view") == "week" else "list"
    days = _week(rows) if view == "week" else []
    errors = problem.field_errors() if problem else {}
    if "radius_km" in errors or "near" in errors:
        errors["km"] = errors.get("radius_km") or errors.get("near", "")
    return render_template("school/menu.html", rows=rows, view=view, days=days,
                           args=request.args, categories=CATEGORIES, errors=errors,
                           problem=problem, school=place, next_url=next_url(cursor)), \
        (422 if problem else 200)


def _week(rows: list[dict[str, Any]]) -> list[tuple[date, list[dict[str, Any]]]]:
    start = request.args.get("from") or date.today().isoformat()
    try:
        first = date.fromisoformat(start)
    except ValueError:
        first = date.today()
    days = [first + timedelta(days=n) for n in range(7)]
    by_day: dict[date, list[dict[str, Any]]] = {d: [] for d in days}
    for row in rows:
        day = i18n.local_day(row["starts_at"], row.get("timezone"))
        if day in by_day:
            by_day[day].append(row)
    return list(by_day.items())


# -- claiming ----------------------------------------------------------------------------
def _groups(form: Form, known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The classes picked (or typed: full-width brackets fold to the roster's label)."""
    labels = [r["label"] for r in known]
    picked = list(form.many("classes"))
    typed = i18n.clean_text(form.get("other_class"))
    if typed:
        match = i18n.match_label(typed, labels)
        if match is None:
            form.fail("other_class", _("No roster has this class; upload its roster first."))
        elif match not in picked:
            picked.append(match)
    if not picked and "other_class" not in form.errors:
        form.fail("classes", _("Pick at least one class."))
    groups = []
    for index, label in enumerate(picked):
        slot = labels.index(label) if label in labels else index
        students = whole(form, f"students_{slot}", 1, 200)
        teachers = whole(form, f"teachers_{slot}", 0, 20)
        grade = grade_of(label) or whole(form, f"grade_{slot}", 1, 12)
        if None not in (students, teachers, grade):
            groups.append({"label": label, "grade": grade, "students": students,
                           "teachers": teachers})
    return groups


@bp.route("/sessions/<session_id>/claim", methods=["GET", "POST"])
@requires("school")
def claim(session_id: str) -> Any:
    item = api().get(f"/v1/sessions/{session_id}")
    known = rosters()
    defaults: dict[str, Any] = {"waitlist": "1"}
    for slot, roster in enumerate(known):
        defaults[f"students_{slot}"] = roster["pupil_count"]
        defaults[f"teachers_{slot}"] = _teachers_needed(item, roster["pupil_count"])
        defaults[f"grade_{slot}"] = grade_of(roster["label"]) or ""
    form = Form.posted() if request.method == "POST" else Form(defaults)
    if request.method == "POST":
        groups = _groups(form, known)
        if form.ok:
            try:
                made = api().post("/v1/claims", creates=True, json={
                    "session_id": session_id, "groups": groups,
                    "waitlist": form.get("waitlist") == "1"})
            except ApiProblem as exc:
                form.refused(exc, {"groups": "classes"})
            else:
                return redirect(url_for("school.claim_page", claim_id=made["claim_id"]),
                                code=303)
    status = 422 if (form.errors or form.message) else 200
    return render_template("school/claim.html", item=item, rosters=known, form=form,
                           picked=set(form.many("classes"))), status


def _teachers_needed(item: dict[str, Any], students: int) -> int:
    """Teachers the session's supervision ratio asks for `students` (rounded up)."""
    ratio = item.get("min_teachers_per_students") or {}
    if not ratio:
        return 1
    per = max(1, int(ratio["per_students"]))
    return max(1, -(-students // per) * int(ratio["teachers"]))


@bp.route("/batch", methods=["GET", "POST"])
@requires("school")
def batch() -> Any:
    """Split classes across sessions, in preference order (分期分批)."""
    known = rosters()
    chosen = [s for s in request.values.getlist("session") if s]
    sessions = []
    for session_id in chosen[:20]:
        try:
            sessions.append(api().get(f"/v1/sessions/{session_id}"))
        except ApiProblem:
            continue
    defaults: dict[str, Any] = {"mode": "all_or_nothing"}
    for slot, roster in enumerate(known):
        defaults[f"students_{slot}"] = roster["pupil_count"]
        defaults[f"teachers_{slot}"] = 1
        defaults[f"grade_{slot}"] = grade_of(roster["label"]) or ""
    form = Form.posted() if request.method == "POST" else Form(defaults)
    result = None
    if request.method == "POST":
        groups = _groups(form, known)
        order = sorted(chosen, key=lambda s: whole(Form({"n": form.get(f"rank_{s}") or "99"}),
                                                   "n", 0, 999) or 99)
        if not order:
            form.fail("session", _("Pick sessions on the course menu first."))
        if form.ok:
            try:
                result = api().post("/v1/claim-batches", creates=True, json={
                    "groups": groups, "session_ids": order, "mode": form.get("mode"),
                    "waitlist": form.get("waitlist") == "1"})
            except ApiProblem as exc:
                form.refused(exc, {"groups": "classes", "session_ids": "session",
                                   "mode": "mode"})
    status = 422 if (form.errors or form.message) else 200
    return render_template("school/batch.html", rosters=known, sessions=sessions, form=form,
                           result=result, picked=set(form.many("classes"))), status


@bp.get("/claims")
@requires("school")
def claims() -> Any:
    params = page_args()
    if request.args.get("status"):
        params["status"] = request.args["status"]
    rows, cursor = items_of(api().get("/v1/claims", params=params))
    titles = _session_titles(rows)
    return render_template("school/claims.html", rows=rows, titles=titles,
                           next_url=next_url(cursor), status=request.args.get("status", ""))


def _session_titles(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        trip = row.get("trip") or {}
        seen.setdefault(row["session_id"], trip)
    return seen


@bp.get("/claims/<claim_id>")
@requires("school")
def claim_page(claim_id: str) -> Any:
    return _claim_page(claim_id)


def _claim_page(claim_id: str, notice: str | None = None,
                problem: ApiProblem | None = None) -> Any:
    try:
        item = api().get(f"/v1/claims/{claim_id}")
    except ApiProblem as exc:
        if exc.status in (403, 404):
            return render_template("error.html", status=404,
                                   message=_("No claim of your school has this number.")), 404
        raise
    consents = None
    if item["status"] == "confirmed":
        try:
            consents = api().get(f"/v1/claims/{claim_id}/consents")
        except ApiProblem:
            consents = None
    return render_template("school/claim_page.html", item=item, consents=consents,
                           allocation=allocation_of(item), notice=notice,
                           problem=problem), (problem.status if problem else 200)


def allocation_of(item: dict[str, Any]) -> dict[str, Any] | None:
    """The window allocation of the claim's session as the school may see it (its own
    lines), or None for a first-come session."""
    try:
        return api().get(f"/v1/sessions/{item['session_id']}/allocation")
    except ApiProblem:
        return None


@bp.post("/claims/<claim_id>/consents/remind")
@requires("school")
def remind_consents(claim_id: str) -> Any:
    """Send the consent request again to the guardians who have not answered."""
    try:
        sent = api().post(f"/v1/claims/{claim_id}/consents/remind", creates=True)
    except ApiProblem as exc:
        return _claim_page(claim_id, problem=exc)
    notice = _("Reminder sent to the guardians of %(pupils)s pupil(s): %(messages)s "
               "message(s).", pupils=sent["pupils"], messages=sent["messages"])
    if sent.get("deferred"):
        notice += " " + _("%(n)s text or WeChat message(s) will go at 07:00, after quiet "
                          "hours.", n=sent["deferred"])
    return _claim_page(claim_id, notice=notice)


@bp.post("/claims/<claim_id>/cancel")
@requires("school")
def cancel_claim(claim_id: str) -> Any:
    reason = i18n.clean_text(request.form.get("reason")) or _("cancelled by the school")
    try:
        api().post(f"/v1/claims/{claim_id}/cancel", json={"reason": reason})
    except ApiProblem as exc:
        return render_template("error.html", status=exc.status, message=exc.detail), exc.status
    return redirect(url_for("school.claim_page", claim_id=claim_id), code=303)


# -- rosters -----------------------------------------------------------------------------
def xlsx_to_csv(data: bytes) -> str:
    """The first sheet of an XLSX roster as CSV text, for the API's CSV upload."""
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheet = book.worksheets[0]
    out = io.StringIO()
    writer = csv.writer(out)
    for row in sheet.iter_rows(values_only=True):
        if row and any(cell not in (None, "") for cell in row):
            writer.writerow(["" if cell is None else str(cell) for cell in row])
    book.close()
    return out.getvalue()


@bp.route("/rosters", methods=["GET", "POST"])
@requires("school")
def roster_list() -> Any:
    form = Form.posted() if request.method == "POST" else Form()
    row_errors: list[tuple[str, str, str]] = []
    notice = None
    if request.method == "POST":
        label = i18n.clean_text(form.get("label"))
        upload = request.files.get("file")
        if not label:
            form.fail("label", _("Enter the class, e.g. 五年级(2)班."))
        if upload is None or not upload.filename:
            form.fail("file", _("Choose a CSV or XLSX file."))
        if form.ok:
            raw = upload.read()
            try:
                text = xlsx_to_csv(raw) if upload.filename.lower().endswith(".xlsx") \
                    else raw.decode("utf-8-sig")
            except (UnicodeDecodeError, ValueError, KeyError, OSError):
                form.fail("file", _("This file is not a UTF-8 CSV or an XLSX workbook."))
            else:
                label = i18n.match_label(label, [r["label"] for r in rosters()]) or label
                try:
                    saved = api().put(f"/v1/schools/{who()['org']}/rosters/{label}",
                                      data=text.encode(), content_type="text/csv")
                    notice = _("Roster saved: %(n)s pupils.", n=saved["pupil_count"])
                    form = Form()
                except ApiProblem as exc:
                    row_errors = _row_errors(exc)
                    form.message = exc.detail
    status = 422 if (form.errors or form.message) else 200
    return render_template("school/rosters.html", rows=rosters(), form=form,
                           row_errors=row_errors, notice=notice), status


def _row_errors(problem: ApiProblem) -> list[tuple[str, str, str]]:
    """(row, column, message) from `rows.<n>.<column>` errors, in row order."""
    found = []
    for name, message in problem.field_errors().items():
        parts = name.split(".")
        if parts[0] == "rows" and len(parts) >= 2:
            found.append((parts[1], ".".join(parts[2:]), message))
        else:
            found.append(("", name, message))
    return sorted(found, key=lambda e: (int(e[0]) if e[0].isdigit() else 0, e[1]))


def mask(contact: str | None) -> str:
    """A contact as listings show it: +86 138****5678, w***@example.cn."""
    if not contact:
        return "—"
    if "@" in contact:
        local, _, domain = contact.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = contact.replace(" ", "")
    return digits[:-8] + "****" + digits[-4:] if len(digits) > 8 else "****"


@bp.get("/rosters/<path:label>")
@requires("school")
def roster(label: str) -> Any:
    item = api().get(f"/v1/schools/{who()['org']}/rosters/{label}")
    return render_template("school/roster.html", item=item, mask=mask)


# -- tutor visits ------------------------------------------------------------------------
@bp.route("/visits", methods=["GET", "POST"])
@requires("school")
def visits() -> Any:
    form = Form.posted() if request.method == "POST" else Form(
        {"hours": "2", "venue": request.args.get("venue", "")})
    notice = None
    if request.method == "POST":
        students = whole(form, "students", 1, 2000)
        if not form.get("tutor_id"):
            form.fail("tutor_id", _("Pick a tutor."))
        if form.ok:
            try:
                api().post("/v1/tutor-visits", creates=True, json={
                    "tutor_id": form.get("tutor_id"), "date": i18n.fold(form.get("date")),
                    "hours": float(i18n.fold(form.get("hours")) or 0),
                    "students": students, "subject": i18n.clean_text(form.get("subject")) or None})
                notice, form = _("Visit booked."), Form({"hours": "2"})
            except (ApiProblem, ValueError) as exc:
                if isinstance(exc, ApiProblem):
                    form.refused(exc, {k: k for k in ("tutor_id", "date", "hours", "students",
                                                      "subject")})
                else:
                    form.fail("hours", _("Enter hours, e.g. 1.5."))
    venues = _venues_nearby()
    tutors: list[dict[str, Any]] = []
    if form.get("venue"):
        tutors, _c = items_of(api().get(f"/v1/venues/{form.get('venue')}/tutors",
                                        params={"limit": 100}))
    rows, cursor = items_of(api().get("/v1/tutor-visits", params=page_args()))
    status = 422 if (form.errors or form.message) else 200
    return render_template("school/visits.html", rows=rows, form=form, venues=venues,
                           tutors=tutors, notice=notice, next_url=next_url(cursor)), status


def _venues_nearby() -> list[dict[str, Any]]:
    """Venues of the school's district (all venues if it has none yet), for choosing whose
    tutor to invite (`GET /v1/venues`)."""
    district = school().get("district_id")
    params: dict[str, Any] = {"limit": 200}
    rows: list[dict[str, Any]] = []
    if district:
        rows, _c = items_of(api().get("/v1/venues", params={**params,
                                                            "district_id": district}))
    if not rows:
        rows, _c = items_of(api().get("/v1/venues", params=params))
    return sorted(rows, key=lambda v: v.get("name") or "")


@bp.post("/visits/<visit_id>/confirm")
@requires("school")
def confirm_visit(visit_id: str) -> Any:
    try:
        api().post(f"/v1/tutor-visits/{visit_id}/confirm")
    except ApiProblem as exc:
        return render_template("error.html", status=exc.status, message=exc.detail), exc.status
    return redirect(url_for("school.visits"), code=303)


@bp.get("/rosters.csv")
@requires("school")
def roster_template() -> Response:
    """An empty roster with the API's column names, to fill in."""
    header = "pupil,pupil_ref,guardian,relation,phone,email,wechat_openid,language,channel\n"
    return Response(header, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="roster.csv"'})
