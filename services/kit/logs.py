"""Structured JSON logs that carry one correlation id from the gateway through RPC and events.

The id lives in a context variable: the gateway sets it per request, nameko workers set it
from the `nameko.correlation_id` header (see `LogContext`), and the outbox stamps it onto
every event envelope so handlers downstream log under the same id.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid

from pythonjsonlogger.json import JsonFormatter

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)

_PHONE = re.compile(r"(?<!\d)(1\d{2})\d{4}(\d{4})(?!\d)")
_EMAIL = re.compile(r"\b([A-Za-z0-9])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


def mask_text(text: str) -> str:
    """Mask mainland mobile numbers and e-mail addresses wherever they appear in a line."""
    return _EMAIL.sub(r"\1***\2", _PHONE.sub(r"\1****\2", text))


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
