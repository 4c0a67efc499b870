"""School staff book teacher-training seats (教师培训) for themselves or colleagues: the
training sessions open to teachers, a form of names (one per line, `name, subject`), and
the school's seats with a way to give one back."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, url_for

from services.console import i18n
from services.console.api import ApiProblem
from services.console.app import _
from services.console.views.common import Form, api, items_of, page_args, requires

bp = Blueprint("training", __name__)


@bp.get("/school/training")
@requires("school")
def sessions() -> Any:
    items, _cursor = items_of(api().get("/v1/sessions", params={"audience": "teachers",
                                                                "limit": 50}))
    seats, _more = items_of(api().get("/v1/training/bookings", params=page_args(100)))
    return render_template("door/training.html", items=items, seats=seats, form=Form(),
                           answer=None)


def attendees(text: str) -> list[dict[str, Any]]:
    """`name, subject` per line (Chinese or ASCII comma); blank lines skipped."""
    people = []
    for line in i18n.clean_text(text).splitlines():
        name, _sep, subject = line.replace("，", ",").partition(",")
        if name.strip():
            people.append({"name": name.strip()[:50], "subject": subject.strip()[:50] or None})
    return people


@bp.post("/school/training/<session_id>")
@requires("school")
def book(session_id: str) -> Any:
    form = Form.posted()
    people = attendees(str(form.get("attendees") or ""))
    answer = None
    if not people:
        form.fail("attendees", _("Enter at least one name."))
    else:
        try:
            answer = api().post(f"/v1/training/sessions/{session_id}/bookings",
                                json={"attendees": people}, creates=True)
        except ApiProblem as exc:
            if exc.status >= 500:
                raise
            form.refused(exc, {"attendees": "attendees"})
    items, _cursor = items_of(api().get("/v1/sessions", params={"audience": "teachers",
                                                                "limit": 50}))
    seats, _more = items_of(api().get("/v1/training/bookings", params=page_args(100)))
    return render_template("door/training.html", items=items, seats=seats, form=form,
                           answer=answer, chosen=session_id)


@bp.post("/school/training/bookings/<booking_id>/cancel")
@requires("school")
def cancel(booking_id: str) -> Any:
    api().post(f"/v1/training/bookings/{booking_id}/cancel")
    return redirect(url_for("training.sessions"))
