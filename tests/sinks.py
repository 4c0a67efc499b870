"""Stand-in providers for tests: a real SMTP server and an HTTP receiver on loopback.

`Sinks.start()` runs both in this process (aiosmtpd's controller thread; http.server in a
thread) and `sinks.env()` gives the settings that point the notifications service at them.
The HTTP receiver takes the SMS and WeChat webhooks on two paths and can be told to fail
for one recipient: `sinks.http.fail(recipient, times=2)` (then succeed) or `times=None`
(always); `refuse(recipient)` answers 400 with the number echoed the way some providers do
(`+86 138 1234 5678`), which the service must not store or log as is. Tests select what
they got by recipient, so they can share one running stack.
"""

from __future__ import annotations

import email
import email.policy
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from deploy.stack import free_port


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    at: float = field(default_factory=time.time)  # when the sink accepted it

    @cached_property
    def message(self) -> email.message.EmailMessage:
        """Parsed when first read. Parsed on arrival (~0.4 ms), every sender waited for it
        before its 250, and the bench's burst shared its cores with it."""
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        return self.message.get_content()


class _SmtpHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        with self.sink.lock:
            self.sink.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), raw))
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server (aiosmtpd) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mails: list[Mail] = []
        self.port = free_port()
        self.controller = Controller(_SmtpHandler(self), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if address in m.rcpt_tos]

    def matching(self, predicate: Any) -> list[Mail]:
        with self.lock:
            return [m for m in self.mails if predicate(m)]


@dataclass
class Hook:
    path: str
    body: dict[str, Any]
    recipient: str
    status: int


@dataclass
class HttpSink:
    """SMS and WeChat provider webhooks: `/sms` and `/wechat`."""

    port: int = field(default_factory=free_port)
    received: list[Hook] = field(default_factory=list)
    failures: dict[str, int | None] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                recipient = body.get("to") or body.get("touser") or ""
                status, answer = sink._answer(recipient)
                with sink.lock:
                    sink.received.append(Hook(self.path, body, recipient, status))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True

    def _answer(self, recipient: str) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if recipient in self.refused:
                echoed = (f"+86 {recipient[:3]} {recipient[3:7]} {recipient[7:]}"
                          if recipient.isdigit() else recipient)
                return 400, {"error": f"no such subscriber: {echoed}"}
            if recipient in self.failures:
                left = self.failures[recipient]
                if left is None or left > 0:
                    if left is not None:
                        self.failures[recipient] = left - 1
                    return 503, {"error": "provider overloaded, try later"}
        return 200, {"id": f"prov-{next(self._ids)}"}

    def fail(self, recipient: str, times: int | None) -> None:
        """Answer 503 for `recipient` `times` times (None: always), then accept."""
        with self.lock:
            self.failures[recipient] = times

    def refuse(self, recipient: str) -> None:
        """Answer 400 for `recipient`, echoing it (spaced, with +86) in the error."""
        with self.lock:
            self.refused.add(recipient)

    def to(self, recipient: str, path: str | None = None) -> list[Hook]:
        with self.lock:
            return [h for h in self.received
                    if h.recipient == recipient and (path is None or h.path == path)]

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, daemon=True,
                         name="http-sink").start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sinks:
    def __init__(self) -> None:
        self.smtp = SmtpSink()
        self.http = HttpSink()

    def env(self) -> dict[str, str]:
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.smtp.port),
            "SMTP_FROM": "科普 Kepu <no-reply@kepu.test>",
            "SMS_WEBHOOK_URL": f"http://127.0.0.1:{self.http.port}/sms",
            "WECHAT_WEBHOOK_URL": f"http://127.0.0.1:{self.http.port}/wechat",
        }

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[Sinks]:
        sinks = cls()
        sinks.smtp.start()
        sinks.http.start()
        try:
            yield sinks
        finally:
            sinks.http.stop()
            sinks.smtp.stop()
