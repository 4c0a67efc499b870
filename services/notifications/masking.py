"""Contacts and names as listings show them: enough to recognise, too little to use.

13812345678 → 138****5678, li.ming@example.com → l***@example.com, an openid keeps its
first and last three characters, 王小明 → 王*明.
"""

from __future__ import annotations

import re

from services.contracts.notifications import CONTACT_OF


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    if len(phone) < 8:
        return "*" * len(phone)
    return f"{phone[:3]}{'*' * (len(phone) - 7)}{phone[-4:]}"


def mask_email(email: str | None) -> str | None:
    if not email:
        return None
    local, at, domain = email.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_openid(openid: str | None) -> str | None:
    if not openid:
        return None
    if len(openid) <= 6:
        return "***"
    return f"{openid[:3]}***{openid[-3:]}"


def mask_name(name: str | None) -> str | None:
    """Keep the first and, for names of three or more characters, the last character."""
    if not name:
        return name
    if len(name) == 1:
        return name
    if len(name) == 2:
        return f"{name[0]}*"
    return f"{name[0]}{'*' * (len(name) - 2)}{name[-1]}"


_MASKS = {"phone": mask_phone, "email": mask_email, "wechat_openid": mask_openid}


def mask_contact(channel: str | None, value: str | None) -> str | None:
    """The recipient of a message on `channel`, masked the way that channel's contact is."""
    if channel is None or value is None:
        return None
    return _MASKS[CONTACT_OF[channel]](value)


def mask_guardian(guardian: dict) -> dict:
    """A stored guardian with every contact masked (the name stays: the school knows it)."""
    return {**guardian, **{field: mask(guardian.get(field)) for field, mask in _MASKS.items()}}


def _loose(contact: str) -> re.Pattern[str]:
    """`contact` however a provider may echo it: a mobile number with +86 and separators
    (`+86 138 1234 5678`, `138-1234-5678`), anything else in any letter case."""
    if contact.isdigit():
        gaps = r"[\s\-().]*"
        return re.compile(r"(?:(?:\+|00)?86" + gaps + r")?" + gaps.join(contact))
    return re.compile(re.escape(contact), re.IGNORECASE)


def scrub(text: str, contact: str | None, masked: str | None) -> str:
    """`text` with every form of `contact` in it replaced by its masked form."""
    if not contact:
        return text
    return _loose(contact).sub(masked or "***", text)


# -- contacts in free text (survey comments) ----------------------------------------------
_WIDE_DIGITS = str.maketrans("０１２３４５６７８９＠．", "0123456789@.")
# seven or more digits, however spaced or dashed (mobiles, landlines, QQ numbers): an
# opening digit, then up to 19 digit-or-separator characters ending in a digit
_NUMBER = re.compile(r"(?:\+|00)?\d(?:[\s\-–.()（）]{0,2}\d){6,19}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+")
_HANDLE = re.compile(r"(微信号?|vx|VX|wx|WX|WeChat|wechat|QQ|qq)(\s*[:：]?\s*)"
                     r"[A-Za-z0-9_\-]{5,30}")
HIDDEN = "***"


def mask_comment(text: str) -> str:
    """A comment as stored: every phone number, e-mail address and WeChat or QQ handle in
    it replaced by `***` (full-width digits included). Comments are short (≤ 500
    characters), so these bounded patterns cost little."""
    text = text.translate(_WIDE_DIGITS)
    text = _EMAIL.sub(HIDDEN, text)
    text = _HANDLE.sub(lambda m: f"{m.group(1)}{m.group(2)}{HIDDEN}", text)
    return _NUMBER.sub(HIDDEN, text)
