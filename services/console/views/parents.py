"""The page a parent opens from the consent link in an SMS, e-mail or WeChat message.

No account: the token in the link is the whole credential. The page is mobile-first and in
the guardian's language (the link's `lang`, else the language cookie, else zh-CN); it shows
the trip and yes / no, then a confirmation, and a clear page for an expired, invalid or
already-answered link. The same link answers JSON to integrations: the front door sends a
request for `/v1/consents/<token>` here only when it prefers text/html (services/console/front.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, render_template, request

from services.console import i18n
from services.console.api import ApiProblem
from services.console.views.common import api

bp = Blueprint("parents", __name__)


def _language() -> str:
    wanted = request.args.get("lang") or request.form.get("lang")
    if wanted in i18n.LANGUAGES:
        g.lang = wanted
    return g.lang


def _page(token: str, answered: str | None = None, problem: ApiProblem | None = None) -> Any:
    lang = _language()
    try:
        item = api().get(f"/v1/consents/{token}", params={"lang": lang}, auth=False)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise  # "try again later", not "this link does not work"
        return render_template("parents/closed.html", problem=exc, token=token), exc.status
    return render_template("parents/consent.html", item=item, token=token, answered=answered,
                           problem=problem), (problem.status if problem else 200)


@bp.get("/c/<token>")
@bp.get("/v1/consents/<token>")
def consent(token: str) -> Any:
    return _page(token)


@bp.post("/c/<token>")
def answer(token: str) -> Any:
    choice = request.form.get("answer")
    if choice not in ("yes", "no"):
        return _page(token)
    body: dict[str, Any] = {"answer": choice}
    name = i18n.clean_text(request.form.get("guardian_name"))
    if name:
        body["guardian_name"] = name[:50]
    try:
        api().post(f"/v1/consents/{token}", json=body, auth=False)
    except ApiProblem as exc:
        if exc.status in (403, 404, 410):
            return render_template("parents/closed.html", problem=exc, token=token), exc.status
        return _page(token, problem=exc)
    return _page(token, answered=choice)


QUESTIONS = ("content", "organisation", "safety")


def _survey(token: str, answered: bool = False, problem: ApiProblem | None = None,
            typed: dict[str, Any] | None = None) -> Any:
    lang = _language()
    try:
        item = api().get(f"/v1/surveys/{token}", params={"lang": lang}, auth=False)
    except ApiProblem as exc:
        if exc.status >= 500:
            raise
        return render_template("parents/closed.html", problem=exc, token=token), exc.status
    given = (item.get("answer") or {}).get("ratings") or {}
    values = typed or {**{k: str(v) for k, v in given.items()},
                       "comment": (item.get("answer") or {}).get("comment") or ""}
    return render_template("parents/survey.html", item=item, token=token, answered=answered,
                           problem=problem, values=values), (problem.status if problem
                                                             else 200)


@bp.get("/s/<token>")
@bp.get("/v1/surveys/<token>")
def survey(token: str) -> Any:
    return _survey(token)


@bp.post("/s/<token>")
def answer_survey(token: str) -> Any:
    typed = {k: request.form.get(k, "") for k in (*QUESTIONS, "comment")}
    ratings = {k: int(typed[k]) for k in QUESTIONS if typed[k].isdigit()}
    if len(ratings) != len(QUESTIONS):
        missing = ApiProblem(422, {"detail": "", "errors": {
            k: ["missing"] for k in QUESTIONS if k not in ratings}})
        return _survey(token, problem=missing, typed=typed)
    body: dict[str, Any] = {"ratings": ratings}
    comment = i18n.clean_text(typed["comment"])
    if comment:
        body["comment"] = comment
    try:
        api().post(f"/v1/surveys/{token}", json=body, auth=False)
    except ApiProblem as exc:
        return _survey(token, problem=exc, typed=typed)
    return _survey(token, answered=True)
