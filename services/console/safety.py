"""What a browser needs to be safe here: a CSRF token on every form, and strict headers.

CSRF: a random token bound to the person's session cookie (itself HttpOnly, SameSite=Lax,
signed); every POST must send it back, as the form field `csrf_token` or (htmx) the header
`X-CSRF-Token`, or it is refused with 403 before anything is sent to the API.

Headers: a Content-Security-Policy with no inline script or style and nothing from another
origin (the JavaScript is vendored and pinned by integrity), no framing, no sniffing.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import abort, request, session

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def csrf_token() -> str:
    """This session's CSRF token, made on first use."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse an unsafe request whose token is missing or wrong (403)."""
    if request.method not in UNSAFE:
        return None
    expected = session.get("csrf")
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    # a token is ASCII; compare_digest raises (a 500) on any other text, so refuse it first
    if not expected or not str(sent).isascii() or not hmac.compare_digest(str(expected),
                                                                           str(sent)):
        abort(403, description="csrf")
    return None


def harden(response: Any) -> Any:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")  # consent links carry tokens
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response
