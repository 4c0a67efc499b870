"""Tickets: a short code people can type, and a QR code (segno) a camera can scan.

The short code is 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L), so
it reads aloud and types on a phone; it is unique (an index) and is all a check-in
needs. The QR code carries `KEPU-T:<code>` and nothing else: never the manage token,
which could cancel the booking, and never the mobile.
"""

from __future__ import annotations

import io
import re
import secrets

import segno

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 8
PREFIX = "KEPU-T:"
_CODE = re.compile(rf"^[{ALPHABET}]{{{LENGTH}}}$")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def read_code(scanned: str) -> str | None:
    """The ticket code in what a scanner read or a person typed (spaces, dashes and case
    forgiven); None when it is not one."""
    text = scanned.strip()
    if text.upper().startswith(PREFIX):
        text = text[len(PREFIX):]
    text = re.sub(r"[\s-]", "", text).upper()
    return text if _CODE.match(text) else None


def qr_svg(code: str) -> str:
    """The ticket's QR code as a standalone SVG document."""
    out = io.BytesIO()
    segno.make(PREFIX + code, error="m").save(out, kind="svg", scale=6, border=2,
                                              xmldecl=False)
    return out.getvalue().decode()


def qr_png(code: str) -> bytes:
    out = io.BytesIO()
    segno.make(PREFIX + code, error="m").save(out, kind="png", scale=6, border=2)
    return out.getvalue()
