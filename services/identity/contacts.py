"""How a person is reached and named at sign-in: an e-mail address or a mainland mobile.

One spelling per contact, so `Zhang@Example.com` and `zhang@example.com`, or
`138 1234 5678` and `+86 13812345678`, are the same person: e-mail lower-cased, mobile as
E.164 (`+8613812345678`). Listings, logs and events meant for display carry `mask()`.
"""

from __future__ import annotations

import re

from services.kit.errors import validation_error

EMAIL = "email"
MOBILE = "mobile"
KINDS = (EMAIL, MOBILE)

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SEPARATORS = re.compile(r"[\s\-()]")


def normal_email(raw: str) -> str | None:
    value = raw.strip().lower()
    return value if len(value) <= 254 and _EMAIL.fullmatch(value) else None


def normal_mobile(raw: str) -> str | None:
    """A mainland mobile (1[3-9]…, 11 digits, optionally +86/0086/86 first) as E.164."""
    digits = _SEPARATORS.sub("", raw.strip())
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return f"+86{digits}" if _MOBILE.fullmatch(digits) else None


def parse(raw: str, field: str = "identifier") -> tuple[str, str]:
    """(kind, normal value) of something typed at sign-in; ValidationFailed naming `field`."""
    if not isinstance(raw, str) or not raw.strip():
        raise validation_error(field, "an e-mail address or a mainland mobile number")
    if "@" in raw:
        value = normal_email(raw)
        if value:
            return EMAIL, value
    else:
        value = normal_mobile(raw)
        if value:
            return MOBILE, value
    raise validation_error(field, "not an e-mail address or a mainland mobile number")


def key(kind: str, value: str) -> str:
    """The identifier's record id: `email:zhang@example.com`, `mobile:+8613812345678`."""
    return f"{kind}:{value}"


def mask(kind: str, value: str) -> str:
    """`z***@example.com`, `+86 138****5678`: enough to recognise, not to contact."""
    if kind == EMAIL:
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = value.removeprefix("+86")
    return f"+86 {digits[:3]}****{digits[-4:]}"
