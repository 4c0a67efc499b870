"""What every page shares: who is signed in, role gates, forms that keep what was typed,
problem+json errors beside their fields, and cursor pagination."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, redirect, render_template, request, session, url_for

from services.console.api import Api, ApiProblem
from services.console.app import _

HOME = {"venue": "venue.sessions", "school": "school.menu", "finance": "finance.budgets",
        "district": "admin.dashboard", "admin": "admin.overview"}


def api() -> Api:
    return g.api


def who() -> dict[str, Any] | None:
    return session.get("who")


def requires(*roles: str) -> Callable:
    """The page is for these roles (admin passes where listed); anyone else is told so."""

    def wrap(view: Callable) -> Callable:
        @wraps(view)
        def gated(*args: Any, **kwargs: Any) -> Any:
            person = who()
            if not person or not g.tokens.access:
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if person["role"] not in roles:
                return render_template("error.html", status=403,
                                       message=_("This page is not for your role.")), 403
            return view(*args, **kwargs)

        return gated

    return wrap


class Form:
    """A submitted (or empty) form: the values as typed and each field's error."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values: dict[str, Any] = dict(values or {})
        self.errors: dict[str, str] = {}
        self.message: str | None = None

    @classmethod
    def posted(cls) -> Form:
        values: dict[str, Any] = {}
        for key in request.form:
            items = request.form.getlist(key)
            values[key] = items if len(items) > 1 or key.endswith("[]") else items[0]
        values.pop("csrf_token", None)
        return cls(values)

    def get(self, name: str, default: Any = "") -> Any:
        return self.values.get(name, default)

    def many(self, name: str) -> list[str]:
        value = self.values.get(name, [])
        return value if isinstance(value, list) else [value]

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def refused(self, problem: ApiProblem, fields: dict[str, str] | None = None) -> None:
        """Put the API's per-field errors beside this form's fields (`fields` maps API
        names to form names, by prefix); anything unplaced is the form's message."""
        mapping = fields or {}
        unplaced = []
        for api_name, message in problem.field_errors().items():
            name = api_name
            for prefix, form_name in mapping.items():
                if api_name == prefix or api_name.startswith(prefix + "."):
                    name = form_name
                    break
            message = _(message)  # the API's English, in Chinese where the catalogue knows it
            if name in self.values or name in mapping.values():
                self.fail(name, message)
            else:
                unplaced.append(f"{api_name}: {message}")
        self.message = "; ".join(unplaced) or (None if self.errors else problem.detail)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.message


def page_args(limit: int = 20) -> dict[str, Any]:
    """The list's page: `limit`, and the cursor the previous page gave, if any."""
    args: dict[str, Any] = {"limit": limit}
    if request.args.get("cursor"):
        args["cursor"] = request.args["cursor"]
    return args


def items_of(answer: Any) -> tuple[list[dict[str, Any]], str | None]:
    """(items, next cursor) of a list answer, whichever of the API's two shapes it has."""
    if isinstance(answer, list):
        return answer, None
    if isinstance(answer, dict):
        return list(answer.get("items") or []), answer.get("next_cursor")
    return [], None


def names_of(user_ids: list[str | None]) -> dict[str, str]:
    """Display names of people by user id (identity's `GET /v1/people`: members of the
    caller's organisation only); an id without a name is left out, shown as it is."""
    ids = sorted({i for i in user_ids if i})
    if not ids:
        return {}
    try:
        rows, _cursor = items_of(api().get("/v1/people", params={"ids": ",".join(ids)}))
    except ApiProblem:
        return {}
    return {row["user_id"]: row["display_name"] for row in rows if row.get("display_name")}


def next_url(cursor: str | None) -> str | None:
    if not cursor:
        return None
    args = request.args.to_dict()
    args["cursor"] = cursor
    return url_for(request.endpoint, **(request.view_args or {}), **args)


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def whole(form: Form, name: str, low: int = 0, high: int = 100000) -> int | None:
    """A whole number from the form (full-width digits welcome), or the field's error."""
    from services.console.i18n import fold

    text = fold(str(form.get(name)))
    if not text.isdigit() or not (low <= int(text) <= high):
        form.fail(name, _("Enter a whole number from %(low)s to %(high)s.", low=low, high=high))
        return None
    return int(text)
