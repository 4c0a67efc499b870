"""Admin and district staff: districts, schools and venues, people and invitations, and the
audit trail."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

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
)
from services.contracts.monitoring import KINDS

bp = Blueprint("admin", __name__, url_prefix="/admin")
STAFF = ("admin", "district")
ROLES = ("district", "finance", "venue", "school")


@bp.route("/", methods=["GET", "POST"])
@requires(*STAFF)
def overview() -> Any:
    """Districts (an admin registers them), and registering a school or a venue."""
    form = Form.posted() if request.method == "POST" else Form({"kind": "school",
                                                                "timezone": "Asia/Shanghai"})
    notice = None
    if request.method == "POST":
        notice = _register(form)
    problem = None
    try:
        rows, cursor = items_of(api().get("/v1/districts", params=page_args()))
    except ApiProblem as exc:
        rows, cursor, problem = [], None, exc
    status = 422 if (form.errors or form.message) else 200
    return render_template("admin/overview.html", rows=rows, form=form, notice=notice,
                           problem=problem, next_url=next_url(cursor)), status


def _register(form: Form) -> str | None:
    kind = form.get("kind")
    name = i18n.clean_text(form.get("name"))
    try:
        if kind == "district":
            api().post("/v1/districts", creates=True, json={
                "name": name, "code": i18n.fold(form.get("code")),
                "timezone": i18n.fold(form.get("timezone")) or "Asia/Shanghai"})
        else:
            lat, lon = (float(i18n.fold(form.get(k)) or "x") for k in ("lat", "lon"))
            body: dict[str, Any] = {"name": name, "district": i18n.clean_text(
                form.get("district")), "location": {"lat": lat, "lon": lon}}
            if kind == "venue":
                body.update(kind="science_museum", address=i18n.clean_text(form.get("address")))
                api().post("/v1/venues", creates=True, json=body)
            else:
                body.update(rural=False, under_resourced=False,
                            students=int(i18n.fold(form.get("students")) or 0))
                api().post("/v1/schools", creates=True, json=body)
    except ValueError:
        form.fail("lat", _("Enter the latitude and longitude as numbers."))
        return None
    except ApiProblem as exc:
        form.refused(exc, {"location": "lat", "name": "name", "code": "code",
                           "district": "district", "address": "address",
                           "students": "students", "timezone": "timezone"})
        return None
    return _("Registered: %(name)s.", name=name)


VENUE_KINDS = ("science_museum", "planetarium", "zoo", "botanical_garden",
               "agricultural_park", "university", "research_institute", "youth_palace",
               "tech_park", "other")


@bp.get("/schools")
@requires(*STAFF)
def schools() -> Any:
    """The schools of the district (an admin: all, or one district's)."""
    return _directory("schools", "/v1/schools", {})


@bp.get("/venues")
@requires(*STAFF)
def venues() -> Any:
    """Venues, by district and kind."""
    kind = request.args.get("kind")
    return _directory("venues", "/v1/venues", {"kind": kind} if kind in VENUE_KINDS else {})


def _directory(which: str, path: str, extra: dict[str, Any]) -> Any:
    params = {**page_args(50), **extra}
    district = i18n.fold(request.args.get("district_id"))
    if not district and who()["role"] == "district" and which == "venues":
        district = who().get("org") or ""
    if district:
        params["district_id"] = district
    problem = None
    try:
        rows, cursor = items_of(api().get(path, params=params))
    except ApiProblem as exc:
        rows, cursor, problem = [], None, exc
    return render_template("admin/directory.html", which=which, rows=rows, kinds=VENUE_KINDS,
                           args=request.args, district=district, problem=problem,
                           next_url=next_url(cursor)), (problem.status if problem else 200)


@bp.route("/people", methods=["GET", "POST"])
@requires(*STAFF)
def people() -> Any:
    person = who()
    form = Form.posted() if request.method == "POST" else Form(
        {"role": "school", "org_id": person.get("org") or ""})
    notice = None
    if request.method == "POST":
        contact = i18n.fold(form.get("contact"))
        body: dict[str, Any] = {"role": form.get("role"),
                                "org_id": i18n.fold(form.get("org_id")) or None,
                                "display_name": i18n.clean_text(form.get("display_name")) or None,
                                "manager": form.get("manager") == "1"}
        body["email" if "@" in contact else "mobile"] = contact
        try:
            api().post("/v1/invitations", json=body, creates=True)
            notice, form = _("Invitation sent."), Form({"role": "school"})
        except ApiProblem as exc:
            form.refused(exc, {"email": "contact", "mobile": "contact", "role": "role",
                               "org_id": "org_id", "display_name": "display_name"})
    members = invitations = []
    problem = None
    try:
        members, _c = items_of(api().get("/v1/members", params=page_args(50)))
        invitations, _c = items_of(api().get("/v1/invitations", params=page_args(50)))
    except ApiProblem as exc:
        problem = exc
    status = 422 if (form.errors or form.message) else 200
    return render_template("admin/people.html", members=members, invitations=invitations,
                           form=form, roles=ROLES, notice=notice, problem=problem), status


@bp.get("/audit")
@requires(*STAFF)
def audit() -> Any:
    params = page_args(50)
    for name in ("from", "to", "user_id", "org_id", "action"):
        if request.args.get(name):
            params[name] = i18n.fold(request.args[name])
    problem = None
    try:
        rows, cursor = items_of(api().get("/v1/audit", params=params))
    except ApiProblem as exc:
        rows, cursor, problem = [], None, exc
    return render_template("admin/audit.html", rows=rows, args=request.args, problem=problem,
                           next_url=next_url(cursor)), (422 if problem else 200)


DASHBOARD_ROLES = ("district", "finance", "admin", "school", "venue")


def drill_down() -> dict[str, str]:
    """The API's drill-down (?category=&grade=&week=), kept to values it can answer."""
    found: dict[str, str] = {}
    category = i18n.fold(request.args.get("category"))
    if category:
        found["category"] = category
    grade = i18n.fold(request.args.get("grade"))
    if grade.isdigit():
        found["grade"] = grade
    week = i18n.fold(request.args.get("week"))
    if week:
        found["week"] = week
    return found


def _own_district(person: dict[str, Any]) -> str:
    """A school's or venue's district, from its own record; district staff's org itself."""
    org = person.get("org") or ""
    if person["role"] in ("school", "venue") and org:
        try:
            record = api().get(f"/v1/{person['role']}s/{org}")
        except ApiProblem:
            return ""
        return record.get("district_id") or ""
    return "" if person["role"] == "admin" else org


@bp.get("/district")
@requires(*DASHBOARD_ROLES)
def dashboard() -> Any:
    """A district's term at a glance (monitoring), drawn and tabled: a school or a venue sees
    its own part (the API scopes every figure to the caller)."""
    from services.console.views.finance import current_term

    district = i18n.fold(request.args.get("district")) or _own_district(who())
    term = i18n.fold(request.args.get("term")) or current_term()
    flt = drill_down()
    report = trend = schools = problem = None
    if district:
        base = f"/v1/monitoring/districts/{district}/terms/{term}"
        try:
            report = api().get(base, params=flt or None)
            trend = api().get(f"{base}/trend", params=flt or None)
            schools = api().get(f"{base}/schools", params=flt or None)
        except ApiProblem as exc:
            problem = exc
    school_rows = (schools or {}).get("items") or []
    chosen = request.args.get("school")
    school = next((r for r in school_rows if r.get("school_id") == chosen), None)
    return render_template("admin/dashboard.html", report=report, trend=trend, term=term,
                           district=district, problem=problem, schools=school_rows,
                           school=school, flt=flt, categories=KINDS,
                           charts=charts_of(report, trend, school_rows)), (
        problem.status if problem else 200)


def charts_of(report: dict[str, Any] | None, trend: dict[str, Any] | None,
              schools: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows each chart draws (static/dashboard.js reads them from the page as JSON)."""
    if not report:
        return {}
    prio = report.get("priority") or {}
    dist = (report.get("satisfaction") or {}).get("distribution") or {}
    return {
        "trend": [{"label": r.get("week"), "values": {
            _("Trips attended"): r.get("trips_attended", 0),
            _("Pupil visits"): r.get("pupil_visits", 0),
            _("Participants to date"): r.get("participants_to_date", 0)}}
                  for r in ((trend or {}).get("items") or [])],
        "coverage": [{"label": r.get("name") or r.get("school_id"), "values": {
            _("Participation rate (%)"): round((r.get("participation_rate") or 0) * 100, 1)}}
                     for r in schools],
        "categories": [{"label": r.get("category"), "values": {
            _("Pupil visits"): r.get("pupil_visits", 0),
            _("Activities"): r.get("activities", 0)}}
                       for r in (report.get("categories") or [])],
        "priority": [{"label": _("Priority schools"), "values": {
            _("Share of enrolment (%)"): round((prio.get("enrolment_share") or 0) * 100, 1),
            _("Share of seats (%)"): round((prio.get("seat_share") or 0) * 100, 1)}}],
        "satisfaction": [{"label": k, "values": {_("Ratings"): v}}
                         for k, v in sorted(dist.items())],
    }


@bp.get("/district/<district>/<term>.<kind>")
@requires(*DASHBOARD_ROLES)
def dashboard_file(district: str, term: str, kind: str) -> Any:
    from services.console.views.finance import download

    if kind not in ("csv", "xlsx"):
        return render_template("error.html", status=404, message=_("No such file.")), 404
    params: dict[str, str] = drill_down()
    if request.args.get("view"):
        params["view"] = request.args["view"]
    return download(api().get(f"/v1/monitoring/districts/{district}/terms/{term}/{kind}",
                              params=params or None, raw=True))
