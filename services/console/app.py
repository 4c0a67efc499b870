"""The console: a server-rendered web app for venue, school, finance and district staff, and
the consent pages parents open from a message.

It holds no domain rule: every page is built from the public /v1 API, called over HTTP with
the signed-in person's own token (services/console/api.py). What it adds is presentation:
language, local times, yuan, forms that keep what was typed, and the safety a browser needs
(services/console/safety.py). docs/console.md describes its place in the architecture.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, g, request, session
from markupsafe import Markup

from services.console import i18n, safety
from services.console.api import Api, Tokens

HERE = Path(__file__).parent
VENDOR_MANIFEST = HERE / "static" / "vendor" / "manifest.json"
LANG_COOKIE = "kepu_lang"


def settings_from(env: Mapping[str, str]) -> dict[str, Any]:
    """The console's settings (deploy/README.md lists them)."""
    api_url = env.get("KEPU_API_URL") or env.get("KEPU_URL") or "http://127.0.0.1:8080"
    secret = env.get("KEPU_CONSOLE_SECRET") or ""
    if not secret:  # derived, so one stack's processes agree without another setting
        base = env.get("KEPU_JWT_SECRET", "kepu-dev-secret")
        secret = hmac.new(base.encode(), b"kepu-console-cookies", hashlib.sha256).hexdigest()
    return {"api_url": api_url.rstrip("/"), "secret": secret,
            "secure_cookies": env.get("KEPU_CONSOLE_SECURE_COOKIES", "") == "1"}


def vendor_assets() -> dict[str, dict[str, str]]:
    return json.loads(VENDOR_MANIFEST.read_text())


def _(message: str, **values: Any) -> str:
    """The message in the request's language (Python-side: flashes and form errors)."""
    text = i18n.translations(g.get("lang", i18n.DEFAULT_LANGUAGE)).gettext(message)
    return text % values if values else text


def _gettext(message: str) -> str:
    return _(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.translations(g.get("lang", i18n.DEFAULT_LANGUAGE)).ngettext(singular, plural, n)


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    config = settings_from(os.environ if env is None else env)
    app = Flask(__name__, static_folder="static", static_url_path="/static",
                template_folder="templates")
    app.config.update(
        SECRET_KEY=config["secret"], API_URL=config["api_url"],
        SESSION_COOKIE_NAME="kepu_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=config["secure_cookies"],
        MAX_CONTENT_LENGTH=2 * 1024 * 1024, SEND_FILE_MAX_AGE_DEFAULT=3600,
        TEMPLATES_AUTO_RELOAD=False)
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.autoescape = True
    assets = vendor_assets()
    app.jinja_env.install_gettext_callables(gettext=_gettext, ngettext=_ngettext, newstyle=True)

    @app.before_request
    def open_request() -> Any:
        g.started = time.perf_counter()
        g.lang = i18n.pick_language(request.cookies.get(LANG_COOKIE))
        g.tokens = Tokens(session.get("access"), session.get("refresh"))
        g.api = Api(app.config["API_URL"], g.tokens, client_address=forwarded_for(request),
                    language=g.lang)
        return safety.check_csrf()

    @app.after_request
    def close_request(response: Any) -> Any:
        tokens: Tokens | None = g.get("tokens")
        if tokens is not None and tokens.changed:
            if tokens.access:
                session["access"], session["refresh"] = tokens.access, tokens.refresh
            else:
                for key in ("access", "refresh", "who"):
                    session.pop(key, None)
        api: Api | None = g.get("api")
        if api is not None and "started" in g:
            total = (time.perf_counter() - g.started) * 1000
            response.headers["Server-Timing"] = (
                f"app;dur={total:.1f}, api;dur={api.spent_s * 1000:.1f};desc=\"{api.calls} calls\"")
        return safety.harden(response)

    @app.context_processor
    def helpers() -> dict[str, Any]:
        lang = g.get("lang", i18n.DEFAULT_LANGUAGE)

        def asset(name: str) -> Markup:
            entry = assets[name]
            return Markup('<script src="/static/vendor/{0}" integrity="{1}" defer></script>'
                          ).format(name, entry["integrity"])

        return {"lang": lang, "who": session.get("who"), "csrf_token": safety.csrf_token,
                "asset": asset, "yuan": i18n.yuan,
                "when": lambda stamp, tz=None, **kw: i18n.local_time(stamp, tz, lang, **kw),
                "html_lang": "zh-CN" if lang == "zh-CN" else "en"}

    from services.console.views import register
    register(app)
    return app


def forwarded_for(req: Any) -> str | None:
    """The X-Forwarded-For the console sends on: what it received, then its own peer (the
    ingress, or the browser), so the gateway's trusted-proxy walk finds the real client."""
    chain = [req.headers.get("X-Forwarded-For", "").strip(), req.remote_addr or ""]
    return ", ".join(part for part in chain if part) or None
