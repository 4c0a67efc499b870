"""Structured JSON logs that carry one correlation id from the gateway through RPC and events.

The id lives in a context variable: the gateway sets it per request, nameko workers set it
from the `nameko.correlation_id` header (see `LogContext`), and the outbox stamps it onto
every event envelope so handlers downstream log under the same id.
"""

from __future__ import annotations

import contextvars
import logging
import re
import string
import sys
import uuid

from pythonjsonlogger.json import JsonFormatter

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

# A mainland mobile number (1[3-9] and nine more digits), bare or written 138-1234-5678,
# 138 1234 5678, +86 138 1234 5678, +8613812345678 or 0086-138…: the middle four digits
# are masked, the separators and country code kept. Every part has a fixed length, so a
# match attempt does bounded work at each position: linear in the line.
_PHONE = re.compile(
    r"(?<!\d)((?:\+86|0086)[- ]?)?(1[3-9]\d)([- ]?)\d{4}(\3)(\d{4})(?!\d)")

# E-mail addresses are found from their `@`, looking at most LOCAL_MAX characters back and
# DOMAIN_MAX forward: a regex for the whole address backtracks over a long run of
# address-like characters (`'a.' * 10000` took 0.7 s, quadratic). Local parts may start
# with any of these (`_x@…`, `x.y+tag@…`); quotes, `=` and `/` are left out, so
# `to=li@x.cn` masks as `to=l***@x.cn`.
_LOCAL_CHARS = frozenset(string.ascii_letters + string.digits + ".!#$%&*+-?^_{|}~")
_DOMAIN_CHARS = frozenset(string.ascii_letters + string.digits + ".-")
LOCAL_MAX = 64
DOMAIN_MAX = 255


def _domain_end(text: str, start: int) -> int:
    """Where the domain starting at `start` ends (exclusive), or -1 if there is none."""
    end = start
    limit = min(len(text), start + DOMAIN_MAX)
    while end < limit and text[end] in _DOMAIN_CHARS:
        end += 1
    domain = text[start:end]
    while True:  # the longest prefix that ends in a top-level label of 2+ letters
        head, dot, tail = domain.rpartition(".")
        if not dot:
            return -1
        if head and len(tail) >= 2 and tail.isascii() and tail.isalpha():
            return start + len(domain)
        domain = head


def _mask_emails(text: str) -> str:
    out: list[str] = []
    done = 0  # text[:done] is already in `out`
    at = text.find("@")
    while at != -1:
        begin = at
        while begin > max(done, at - LOCAL_MAX) and text[begin - 1] in _LOCAL_CHARS:
            begin -= 1
        end = _domain_end(text, at + 1) if begin < at else -1
        if end == -1:
            at = text.find("@", at + 1)
            continue
        out.append(text[done:begin + 1])
        out.append("***")
        out.append(text[at:end])
        done = end
        at = text.find("@", end)
    out.append(text[done:])
    return "".join(out)


def mask_text(text: str) -> str:
    """Mask mainland mobile numbers and e-mail addresses wherever they appear in a line.

    Linear in the length of `text`, whatever it holds: log lines echo what clients send.
    """
    return _mask_emails(_PHONE.sub(r"\1\2\3****\4\5", text))


def clip(value: object, limit: int = 40) -> str:
    """`value` as an error message may echo it: at most `limit` characters, then `…`.

    Anything a client sent that goes back into a problem's detail or a log line passes
    through this, so a megabyte of input never becomes a megabyte of error.
    """
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def new_correlation_id() -> str:
    return uuid.uuid4().hex


class _Context(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.correlation_id = correlation_id.get()
        return True


class _MaskingFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


def configure(service: str, level: str = "INFO") -> None:
    """JSON lines on stderr for this process; idempotent."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_MaskingFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(service)s %(correlation_id)s",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
    ))
    handler.addFilter(_Context(service))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("kombu", "amqp", "pika", "nameko", "pymongo", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
