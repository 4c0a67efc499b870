"""Venue staff: upcoming sessions, publishing (one or a weekly series), rescheduling,
resizing and cancelling, a session's claims, waitlist and attendance, tutors and visits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for

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

bp = Blueprint("venue", __name__, url_prefix="/venue")
LEVELS = ("junior", "intermediate", "senior", "expert")
SESSION_FIELDS = {"title": "title", "description": "description", "category": "category",
                  "audience": "audience", "grades": "grade_min", "starts_at": "starts_at",
                  "ends_at": "ends_at", "capacity": "capacity", "price_fen": "price",
                  "claim_policy": "claim_policy", "window_closes_at": "window_closes_at",
                  "max_seats_per_school": "max_seats_per_school",
                  "min_teachers_per_students": "supervision_teachers",
                  "cancel_cutoff_hours": "cancel_cutoff_hours", "what_to_bring": "what_to_bring",
                  "repeat.weekly.until": "until", "repeat.weekly.weekdays": "weekdays",
                  "repeat": "weekdays"}


def venue() -> dict[str, Any]:
    return api().get(f"/v1/venues/{who()['org']}")


@bp.get("/")
@requires("venue")
def sessions() -> Any:
    """Upcoming sessions with seats left (this venue's, soonest first)."""
    place = venue()
    args = {**page_args(), "venue_id": who()["org"],
            "from": datetime.now(UTC).isoformat(timespec="seconds")}
    rows, cursor = items_of(api().get("/v1/sessions", params=args))
    return render_template("venue/sessions.html", venue=place, rows=rows,
                           next_url=next_url(cursor))


def _draft(form: Form, tz: str) -> dict[str, Any] | None:
    """The API body for a new session, or None with the form's errors set."""
    body: dict[str, Any] = {}
    for name in ("title", "category", "audience"):
        value = i18n.clean_text(form.get(name))
        if not value:
            form.fail(name, _("This field is required."))
        body[name] = value
    for name in ("description", "what_to_bring"):
        if i18n.clean_text(form.get(name)):
            body[name] = i18n.clean_text(form.get(name))
    low, high = (whole(form, name, 1, 12) for name in ("grade_min", "grade_max"))
    if low is not None and high is not None and low > high:
        form.fail("grade_max", _("The last grade cannot be below the first."))
    body["grades"] = [low, high]
    body.update(_times(form, tz))
    body.update(_seats(form))
    if form.get("repeat") == "weekly":
        body["repeat"] = _weekly(form)
    return body if not form.errors else None


def _times(form: Form, tz: str) -> dict[str, Any]:
    times: dict[str, Any] = {}
    for name in ("starts_at", "ends_at"):
        try:
            times[name] = i18n.from_local_input(str(form.get(name)), tz)
        except ValueError:
            form.fail(name, _("Enter a date and time."))
    times["claim_policy"] = form.get("claim_policy") or "first_come"
    if times["claim_policy"] == "window":
        try:
            times["window_closes_at"] = i18n.from_local_input(
                str(form.get("window_closes_at")), tz)
        except ValueError:
            form.fail("window_closes_at", _("Enter when the claim window closes."))
    return times


def _seats(form: Form) -> dict[str, Any]:
    seats: dict[str, Any] = {"capacity": whole(form, "capacity", 1, 5000)}
    try:
        seats["price_fen"] = i18n.fen_from_yuan(str(form.get("price") or "0"))
    except ValueError:
        form.fail("price", _("Enter an amount in yuan, e.g. 12.50."))
    if i18n.fold(form.get("max_seats_per_school")):
        seats["max_seats_per_school"] = whole(form, "max_seats_per_school", 1, 5000)
    if i18n.fold(form.get("supervision_teachers")):
        teachers = whole(form, "supervision_teachers", 1, 10)
        per = whole(form, "supervision_students", 1, 100)
        seats["min_teachers_per_students"] = {"teachers": teachers, "per_students": per}
    if i18n.fold(form.get("cancel_cutoff_hours")):
        seats["cancel_cutoff_hours"] = whole(form, "cancel_cutoff_hours", 0, 720)
    return seats


def _weekly(form: Form) -> dict[str, Any]:
    days = [int(d) for d in form.many("weekdays") if str(d).isdigit()]
    if not days:
        form.fail("weekdays", _("Pick the weekdays it repeats on."))
    if not i18n.fold(form.get("until")):
        form.fail("until", _("Enter the last date of the series."))
    return {"weekly": {"weekdays": days, "until": i18n.fold(form.get("until"))}}


@bp.route("/sessions/new", methods=["GET", "POST"])
@requires("venue")
def publish() -> Any:
    place = venue()
    form = Form.posted() if request.method == "POST" else Form(
        {"audience": "students", "category": "science", "claim_policy": "first_come",
         "price": "0", "repeat": "once", "grade_min": "1", "grade_max": "6"})
    if request.method == "POST":
        body = _draft(form, place["timezone"])
        if body is not None:
            try:
                made = api().post(f"/v1/venues/{who()['org']}/sessions", json=body,
                                  creates=True)
            except ApiProblem as exc:
                form.refused(exc, SESSION_FIELDS)
            else:
                if "session_id" in made:
                    return redirect(url_for("venue.session", session_id=made["session_id"],
                                            published=1), code=303)
                return redirect(url_for("venue.sessions", series=len(made.get("sessions",
                                                                                 []))), code=303)
    status = 422 if (form.errors or form.message) else 200
    return render_template("venue/publish.html", form=form, venue=place,
                           categories=CATEGORIES), status


def _session_page(session_id: str, form: Form | None = None, status: int = 200,
                  notice: str | None = None) -> Any:
    item = api().get(f"/v1/sessions/{session_id}")
    if item["venue_id"] != who()["org"]:
        return render_template("error.html", status=403,
                               message=_("This session is not your venue's.")), 403
    claims, cursor = items_of(api().get("/v1/claims", params={
        "session_id": session_id, **page_args(50)}))
    started = (i18n.parse_instant(item["starts_at"]) or datetime.max.replace(
        tzinfo=UTC)) <= datetime.now(UTC)
    edit = form or Form({"starts_at": i18n.local_input(item["starts_at"], item["timezone"]),
                         "ends_at": i18n.local_input(item["ends_at"], item["timezone"]),
                         "capacity": item["capacity"]})
    return render_template("venue/session.html", item=item, claims=claims, started=started,
                           edit=edit, next_url=next_url(cursor), notice=notice,
                           consents=consent_progress(claims)), status


def consent_progress(claims: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Parents' consent counts per confirmed claim (no names: notifications' summaries)."""
    ids = [c["claim_id"] for c in claims if c.get("status") == "confirmed"]
    if not ids:
        return {}
    try:
        rows, _cursor = items_of(api().get("/v1/consent-summaries",
                                           params={"claim_ids": ",".join(ids)}))
    except ApiProblem:
        return {}
    return {row["claim_id"]: row["summary"] for row in rows}


@bp.get("/sessions/<session_id>")
@requires("venue")
def session(session_id: str) -> Any:
    notice = _("Published.") if request.args.get("published") else None
    return _session_page(session_id, notice=notice)


@bp.post("/sessions/<session_id>/change")
@requires("venue")
def change(session_id: str) -> Any:
    """Reschedule or resize (never below the seats already held: the API says so)."""
    form = Form.posted()
    item = api().get(f"/v1/sessions/{session_id}")
    body: dict[str, Any] = {}
    for name in ("starts_at", "ends_at"):
        if form.get(name) != i18n.local_input(item[name], item["timezone"]):
            try:
                body[name] = i18n.from_local_input(str(form.get(name)), item["timezone"])
            except ValueError:
                form.fail(name, _("Enter a date and time."))
    capacity = whole(form, "capacity", 1, 5000)
    if capacity is not None and capacity != item["capacity"]:
        body["capacity"] = capacity
    if form.ok and body:
        try:
            api().patch(f"/v1/sessions/{session_id}", json=body)
        except ApiProblem as exc:
            form.refused(exc, {"starts_at": "starts_at", "ends_at": "ends_at",
                               "capacity": "capacity"})
    if not form.ok:
        return _session_page(session_id, form, 422)
    return redirect(url_for("venue.session", session_id=session_id), code=303)


@bp.post("/sessions/<session_id>/cancel")
@requires("venue")
def cancel(session_id: str) -> Any:
    reason = i18n.clean_text(request.form.get("reason")) or _("cancelled by the venue")
    try:
        api().post(f"/v1/sessions/{session_id}/cancel", json={"reason": reason})
    except ApiProblem as exc:
        return _session_page(session_id, status=exc.status, notice=exc.detail)
    return redirect(url_for("venue.session", session_id=session_id), code=303)


@bp.post("/sessions/<session_id>/attendance")
@requires("venue")
def attendance(session_id: str) -> Any:
    """Head counts per claim, as the venue's staff counted them at the door."""
    form = Form.posted()
    records = []
    for key in request.form:
        if key.startswith("students:"):
            claim_id = key.split(":", 1)[1]
            students = whole(form, key, 0, 2000)
            teachers = whole(form, f"teachers:{claim_id}", 0, 200)
            if students is not None and teachers is not None:
                records.append({"claim_id": claim_id, "students": students,
                                "teachers": teachers})
    if form.ok and records:
        try:
            api().post(f"/v1/sessions/{session_id}/attendance", json={"records": records})
        except ApiProblem as exc:
            return _session_page(session_id, status=exc.status, notice=exc.detail)
        return _session_page(session_id, notice=_("Attendance recorded."))
    return _session_page(session_id, status=422, notice=_("Check the counts."))


@bp.route("/tutors", methods=["GET", "POST"])
@requires("venue")
def tutors() -> Any:
    form = Form.posted() if request.method == "POST" else Form({"level": "intermediate"})
    org = who()["org"]
    notice = None
    if request.method == "POST":
        body = {"name": i18n.clean_text(form.get("name")), "level": form.get("level"),
                "subjects": [s for s in (i18n.clean_text(x) for x in str(
                    form.get("subjects")).replace("，", ",").replace("、", ",").split(","))
                             if s],
                "certified_until": i18n.fold(form.get("certified_until"))}
        try:
            api().post(f"/v1/venues/{org}/tutors", json=body, creates=True)
            form, notice = Form({"level": "intermediate"}), _("Tutor registered.")
        except ApiProblem as exc:
            form.refused(exc, {k: k for k in body})
    rows, cursor = items_of(api().get(f"/v1/venues/{org}/tutors", params=page_args()))
    status = 422 if (form.errors or form.message) else 200
    return render_template("venue/tutors.html", rows=rows, form=form, levels=LEVELS,
                           notice=notice, next_url=next_url(cursor)), status


@bp.post("/tutors/<tutor_id>/renew")
@requires("venue")
def renew(tutor_id: str) -> Any:
    until = i18n.fold(request.form.get("certified_until"))
    try:
        api().patch(f"/v1/venues/{who()['org']}/tutors/{tutor_id}",
                    json={"certified_until": until})
    except ApiProblem as exc:
        return render_template("error.html", status=exc.status, message=exc.detail), exc.status
    return redirect(url_for("venue.tutors"), code=303)


@bp.get("/visits")
@requires("venue")
def visits() -> Any:
    rows, cursor = items_of(api().get("/v1/tutor-visits", params=page_args()))
    return render_template("venue/visits.html", rows=rows, next_url=next_url(cursor))


@bp.post("/visits/<visit_id>/deliver")
@requires("venue")
def deliver(visit_id: str) -> Any:
    try:
        api().post(f"/v1/tutor-visits/{visit_id}/deliver")
    except ApiProblem as exc:
        return render_template("error.html", status=exc.status, message=exc.detail), exc.status
    return redirect(url_for("venue.visits"), code=303)
