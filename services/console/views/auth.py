"""Signing in and out, the organisation switcher, the language, and the identity links
(accepting an invitation, resetting a password) that land on the console."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from services.console import i18n
from services.console.api import ApiProblem
from services.console.app import LANG_COOKIE, _
from services.console.views.common import HOME, Form, api, who

bp = Blueprint("auth", __name__)
ORG_PATHS = {"venue": "/v1/venues/{}", "school": "/v1/schools/{}",
             "district": "/v1/districts/{}", "finance": "/v1/districts/{}"}


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an open redirect to another origin."""
    if not target:
        return None
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _org_name(role: str, org: str | None) -> str | None:
    path = ORG_PATHS.get(role)
    if not org or not path:
        return None
    try:
        return api().get(path.format(org)).get("name")
    except ApiProblem:
        return None


def remember(pair: dict[str, Any]) -> None:
    """Keep a new token pair and who it acts as in the session cookie."""
    g.tokens.access, g.tokens.refresh = pair["access_token"], pair["refresh_token"]
    g.tokens.changed = True
    me = api().get("/v1/me")
    acting = me.get("acting") or {}
    role, org = acting.get("role") or pair.get("role"), acting.get("org_id") or pair.get("org_id")
    memberships = [{"org_id": m.get("org_id"), "role": m["role"],
                    "label": m.get("org_name") or m.get("org_id") or _("platform")}
                   for m in me.get("memberships") or []]
    org_name = acting.get("org_name") or _org_name(role, org) or org
    session["who"] = {"user_id": me.get("user_id"), "name": me.get("display_name") or "",
                      "role": role, "org": org, "org_name": org_name,
                      "memberships": memberships}


def home_for(person: dict[str, Any] | None) -> str:
    if not person:
        return url_for("auth.login")
    return url_for(HOME.get(person["role"], "auth.login"))


@bp.get("/")
def index() -> Any:
    return redirect(home_for(who()))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    form = Form.posted() if request.method == "POST" else Form()
    if request.method == "POST":
        identifier = i18n.fold(form.get("identifier"))
        password = str(form.get("password"))
        if not identifier:
            form.fail("identifier", _("Enter your e-mail address or mobile number."))
        if not password:
            form.fail("password", _("Enter your password."))
        if form.ok:
            try:
                pair = api().post("/v1/auth/login", auth=False,
                                  json={"identifier": identifier, "password": password})
            except ApiProblem as exc:
                form.message = (_("Wrong e-mail, mobile or password.") if exc.status == 401
                                else exc.detail)
            else:
                csrf = session.get("csrf")
                session.clear()
                session["csrf"] = csrf
                remember(pair)
                target = _safe_next(request.args.get("next"))
                return redirect(target or home_for(who()), code=303)
        form.values.pop("password", None)  # never echoed back
    return render_template("auth/login.html", form=form), (422 if form.errors or form.message
                                                           else 200)


@bp.post("/logout")
def logout() -> Any:
    if g.tokens.refresh:
        try:
            api().post("/v1/auth/logout", json={"refresh_token": g.tokens.refresh}, auth=False)
        except ApiProblem:
            pass  # signed out here whatever the API says
    lang = request.cookies.get(LANG_COOKIE)
    session.clear()
    g.tokens.access = g.tokens.refresh = None
    response = redirect(url_for("auth.login"), code=303)
    if lang:
        response.set_cookie(LANG_COOKIE, lang, samesite="Lax", max_age=365 * 86400)
    return response


@bp.post("/switch")
def switch() -> Any:
    """Act in another of the person's memberships (a new token pair from identity)."""
    if not who():
        return redirect(url_for("auth.login"))
    org, role = request.form.get("membership", "|").split("|", 1)
    try:
        pair = api().post("/v1/auth/switch", json={"org_id": org or None, "role": role})
    except ApiProblem as exc:
        return render_template("error.html", status=exc.status, message=exc.detail), exc.status
    remember(pair)
    return redirect(home_for(who()), code=303)


@bp.post("/language")
def language() -> Any:
    chosen = request.form.get("lang")
    target = _safe_next(request.form.get("next")) or url_for("auth.index")
    response = redirect(target, code=303)
    if chosen in i18n.LANGUAGES:
        response.set_cookie(LANG_COOKIE, chosen, samesite="Lax", httponly=True,
                            max_age=365 * 86400)
    return response


@bp.route("/accept-invitation", methods=["GET", "POST"])
def accept_invitation() -> Any:
    """The link identity sends with an invitation: choose a password (or give yours)."""
    token = request.values.get("token", "")
    form = Form.posted() if request.method == "POST" else Form()
    done = False
    if request.method == "POST":
        body = {"token": token, "password": str(form.get("password"))}
        if form.get("display_name"):
            body["display_name"] = i18n.clean_text(form.get("display_name"))
        try:
            api().post("/v1/invitations/accept", json=body, auth=False)
            done = True
        except ApiProblem as exc:
            form.refused(exc, {"password": "password", "display_name": "display_name"})
        form.values.pop("password", None)
    return render_template("auth/accept.html", form=form, token=token, done=done)


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password() -> Any:
    token = request.values.get("token", "")
    form = Form.posted() if request.method == "POST" else Form()
    done = False
    if request.method == "POST":
        try:
            api().post("/v1/auth/password-reset/confirm", auth=False,
                       json={"token": token, "password": str(form.get("password"))})
            done = True
        except ApiProblem as exc:
            form.refused(exc, {"password": "password"})
        form.values.pop("password", None)
    return render_template("auth/reset.html", form=form, token=token, done=done)
