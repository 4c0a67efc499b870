"""Language and formats: gettext catalogues, money in yuan, local times, class labels.

The catalogues are the `.po` files under `translations/`, kept in the repository and
extracted with `pybabel extract -F services/console/babel.cfg` (see docs/console.md). They
are compiled in memory when the console starts (Babel's own compiler), so a fresh clone
needs no build step and a stale `.mo` can never shadow an edited `.po`.
"""

from __future__ import annotations

import io
import unicodedata
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).with_name("translations")
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LOCALE_DIR = {"zh-CN": "zh_CN"}  # English is the source language: no catalogue
DEFAULT_TZ = "Asia/Shanghai"


@cache
def translations(language: str) -> NullTranslations:
    """The catalogue of `language`, compiled from its .po file once per process."""
    folder = LOCALE_DIR.get(language)
    if folder is None:
        return NullTranslations()
    po = TRANSLATIONS / folder / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=folder)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def pick_language(cookie: str | None, accept: Any = None) -> str:
    """The cookie's choice, else zh-CN: Kepu's people read Chinese first; English on request."""
    if cookie in LANGUAGES:
        return cookie
    return DEFAULT_LANGUAGE


def yuan(fen: Any) -> str:
    """分 as yuan, e.g. 1250 → ¥12.50 (negative amounts keep their sign)."""
    if fen is None or fen == "":
        return "—"
    value = int(fen)
    sign = "-" if value < 0 else ""
    whole, cents = divmod(abs(value), 100)
    return f"{sign}¥{whole:,}.{cents:02d}"


def fen_from_yuan(text: str) -> int:
    """'12.5', '¥12.50', '１２．５' → 1250 分; ValueError for anything else."""
    cleaned = unicodedata.normalize("NFKC", text or "").strip().replace(",", "")
    cleaned = cleaned.lstrip("¥￥").strip()
    if not cleaned or cleaned.count(".") > 1 or cleaned.startswith("-"):
        raise ValueError(text)
    whole, _, cents = cleaned.partition(".")
    if not whole.isdigit() and whole != "" or not (cents == "" or cents.isdigit()):
        raise ValueError(text)
    if len(cents) > 2:
        raise ValueError(text)
    return int(whole or "0") * 100 + int((cents + "00")[:2])


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TZ)


def parse_instant(stamp: Any) -> datetime | None:
    if not stamp:
        return None
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


WEEKDAYS = {"zh-CN": "一二三四五六日", "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}


def local_time(stamp: Any, tz: str | None, language: str = DEFAULT_LANGUAGE,
               with_date: bool = True) -> str:
    """A UTC stamp shown in the venue's (or district's) own zone, in the reader's language."""
    moment = parse_instant(stamp)
    if moment is None:
        return "—"
    here = moment.astimezone(zone(tz))
    if not with_date:
        return here.strftime("%H:%M")
    weekday = WEEKDAYS.get(language, WEEKDAYS["en"])[here.weekday()]
    if language == "zh-CN":
        return f"{here.year}年{here.month}月{here.day}日（周{weekday}）{here:%H:%M}"
    return f"{weekday} {here:%Y-%m-%d %H:%M}"


def local_input(stamp: Any, tz: str | None) -> str:
    """The value of an <input type=datetime-local> for a UTC stamp, in the zone `tz`."""
    moment = parse_instant(stamp)
    return moment.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M") if moment else ""


def from_local_input(value: str, tz: str | None) -> str:
    """A datetime-local value typed in the venue's zone, as an ISO time with its offset."""
    naive = datetime.fromisoformat(unicodedata.normalize("NFKC", value).strip())
    if naive.tzinfo is not None:
        return naive.isoformat()
    return naive.replace(tzinfo=zone(tz)).isoformat()


def local_day(value: Any, tz: str | None) -> date | None:
    moment = parse_instant(value)
    return moment.astimezone(zone(tz)).date() if moment else None


def normalise_label(label: str) -> str:
    """A class label as typed, made comparable: full-width brackets and digits folded (NFKC),
    spaces dropped, so `五年级（2）班` and `五年级 (2) 班` match the roster's `五年级(2)班`."""
    folded = unicodedata.normalize("NFKC", label or "")
    return "".join(ch for ch in folded if not ch.isspace())


def match_label(typed: str, known: list[str]) -> str | None:
    """The roster label that `typed` names, if any (after folding both)."""
    wanted = normalise_label(typed)
    for label in known:
        if normalise_label(label) == wanted:
            return label
    return None


def clean_text(value: str | None) -> str:
    """Free text as typed, outer spaces (incl. the ideographic U+3000) trimmed; its
    full-width punctuation is kept (a title's `：` is right in Chinese)."""
    return str(value or "").strip()


def fold(value: str | None) -> str:
    """A number, date, code or sign-in identifier as typed on a Chinese keyboard:
    full-width digits, letters and signs folded to ASCII (NFKC), outer spaces trimmed."""
    return unicodedata.normalize("NFKC", str(value or "")).strip()
