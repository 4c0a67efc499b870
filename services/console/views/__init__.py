"""The console's pages, one blueprint per kind of person, and how refusals are shown."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from services.console.api import ApiProblem


def register(app: Flask) -> None:
    from services.console.app import _
    from services.console.views import (
        admin,
        auth,
        door,
        family,
        finance,
        parents,
        school,
        training,
        venue,
    )

    for module in (auth, venue, door, school, training, finance, admin, parents, family):
        app.register_blueprint(module.bp)

    @app.errorhandler(ApiProblem)
    def refused(exc: ApiProblem) -> Any:
        if exc.status == 401:  # the sign-in ended (refresh refused): sign in again
            session.pop("who", None)
            g.tokens.access = g.tokens.refresh = None
            g.tokens.changed = True
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        status = exc.status if exc.status < 500 else 502
        message = exc.detail if exc.status < 500 else _(
            "Kepu could not answer just now. Try again in a moment.")
        return render_template("error.html", status=status, message=message), status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code == 403 and exc.description == "csrf":
            message = _("This form has expired or did not come from Kepu. "
                        "Go back, reload the page and send it again.")
        elif exc.code == 404:
            message = _("There is no page here.")
        else:
            message = exc.name
        return render_template("error.html", status=exc.code, message=message), exc.code

    @app.errorhandler(Exception)
    def failed(exc: Exception) -> Any:
        """A bug: logged by route, never by path or form (links carry tokens, forms names)."""
        logging.getLogger("kepu.console").error(
            "console error on %s %s: %s", request.method, request.url_rule or "-",
            type(exc).__name__)
        return render_template("error.html", status=500, message=_(
            "Kepu could not answer just now. Try again in a moment.")), 500

    @app.get("/console/livez")
    def livez() -> Any:
        return {"status": "ok"}
