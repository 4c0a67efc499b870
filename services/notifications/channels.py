"""The ways a message reaches a guardian, behind one interface: `send(outgoing) -> provider id`.

- email: SMTP, with a small pool of open connections reused across messages (a fan-out
  to a class costs one SMTP transaction per guardian, not one TCP+EHLO handshake each);
- sms and wechat: JSON posted to the provider's HTTP webhook (keep-alive session).

A failed send raises `SendFailed`: `permanent` when trying again cannot help (a refused
address, a 4xx from the provider, a channel with no settings), else the caller retries.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from dataclasses import dataclass
from email.header import Header
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, make_msgid, parseaddr
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter

from services.notifications.settings import NotifySettings

log = logging.getLogger("kepu.notifications.channels")

WIRE = compat32.clone(linesep="\r\n")  # SMTP wants CRLF line ends


@dataclass(frozen=True)
class Outgoing:
    """One message as a channel sends it."""

    message_id: str
    channel: str
    recipient: str
    subject: str
    text: str
    language: str


class SendFailed(Exception):
    def __init__(self, error: str, permanent: bool = False) -> None:
        super().__init__(error)
        self.error = error
        self.permanent = permanent


class Channel(Protocol):
    name: str

    def send(self, outgoing: Outgoing) -> str | None: ...

    def close(self) -> None: ...


class Unconfigured:
    """A channel whose provider is not configured: every message fails, visibly."""

    def __init__(self, name: str, setting: str) -> None:
        self.name = name
        self.setting = setting

    def send(self, outgoing: Outgoing) -> str | None:
        raise SendFailed(f"{self.name} channel not configured (set {self.setting})",
                         permanent=True)

    def close(self) -> None:
        pass


# -- email -------------------------------------------------------------------------------
class SmtpPool:
    """At most `size` SMTP connections, kept open between messages."""

    def __init__(self, host: str, port: int, size: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()

    def _open(self) -> smtplib.SMTP:
        conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        conn.ehlo()
        return conn

    def acquire(self) -> tuple[smtplib.SMTP, bool]:
        """(connection, reused): a slot is held until `release` or `discard`."""
        self._slots.acquire()
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        try:
            return self._open(), False
        except BaseException:
            self._slots.release()
            raise

    def release(self, conn: smtplib.SMTP) -> None:
        with self._lock:
            self._idle.append(conn)
        self._slots.release()

    def discard(self, conn: smtplib.SMTP) -> None:
        try:
            conn.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


def _smtp_failure(exc: Exception) -> SendFailed:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()))
        return SendFailed(f"SMTP {code} recipient refused: {_text(reply)}", permanent=code >= 500)
    if isinstance(exc, smtplib.SMTPResponseException):
        return SendFailed(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}",
                          permanent=exc.smtp_code >= 500)
    return SendFailed(f"SMTP {type(exc).__name__}: {exc}")


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class EmailChannel:
    name = "email"

    def __init__(self, settings: NotifySettings) -> None:
        assert settings.smtp_host
        display, self.sender = parseaddr(settings.smtp_from)
        self.from_header = formataddr((display, self.sender), "utf-8")
        self.pool = SmtpPool(settings.smtp_host, settings.smtp_port, settings.smtp_pool,
                             settings.provider_timeout_s)

    def compose(self, outgoing: Outgoing) -> tuple[str, bytes]:
        """(Message-ID, the message as sent): plain UTF-8 text, subject encoded per RFC 2047.

        Built with the compat32 MIMEText, several times cheaper than EmailMessage; a
        fan-out spends its time here otherwise.
        """
        message = MIMEText(outgoing.text, "plain", "utf-8")
        message_id = make_msgid(idstring=outgoing.message_id, domain="kepu.local")
        message["Subject"] = Header(outgoing.subject, "utf-8")
        message["From"] = self.from_header
        message["To"] = outgoing.recipient
        message["Message-ID"] = message_id
        message["X-Kepu-Message-Id"] = outgoing.message_id
        message["Content-Language"] = outgoing.language
        return message_id, message.as_bytes(policy=WIRE)

    def send(self, outgoing: Outgoing) -> str | None:
        message_id, raw = self.compose(outgoing)
        for _ in range(2):  # a reused connection the server has dropped gets one fresh retry
            try:
                conn, reused = self.pool.acquire()
            except (smtplib.SMTPException, OSError) as exc:
                raise _smtp_failure(exc) from None
            try:
                conn.sendmail(self.sender, [outgoing.recipient], raw)
            except smtplib.SMTPServerDisconnected as exc:
                self.pool.discard(conn)
                if reused:
                    continue
                raise _smtp_failure(exc) from None
            except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as exc:
                self._reset_or_discard(conn)
                raise _smtp_failure(exc) from None
            except (smtplib.SMTPException, OSError) as exc:
                self.pool.discard(conn)
                if reused and isinstance(exc, OSError):
                    continue
                raise _smtp_failure(exc) from None
            self.pool.release(conn)
            return message_id
        raise SendFailed("SMTP connection lost twice")

    def _reset_or_discard(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self.pool.discard(conn)
        else:
            self.pool.release(conn)

    def close(self) -> None:
        self.pool.close()


# -- sms and wechat ----------------------------------------------------------------------
class WebhookChannel:
    """A provider that takes one JSON POST per message and answers with its id."""

    def __init__(self, name: str, url: str, settings: NotifySettings) -> None:
        self.name = name
        self.url = url
        self.timeout = settings.provider_timeout_s
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=settings.concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def payload(self, outgoing: Outgoing) -> dict[str, Any]:
        if self.name == "wechat":
            return {"touser": outgoing.recipient, "msgtype": "text",
                    "text": {"content": outgoing.text}, "ref": outgoing.message_id}
        return {"to": outgoing.recipient, "text": outgoing.text, "ref": outgoing.message_id,
                "language": outgoing.language}

    def send(self, outgoing: Outgoing) -> str | None:
        try:
            response = self.session.post(self.url, json=self.payload(outgoing),
                                         timeout=self.timeout,
                                         headers={"Idempotency-Key": outgoing.message_id})
        except requests.RequestException as exc:
            raise SendFailed(f"{self.name} provider unreachable: {type(exc).__name__}") from None
        if response.status_code >= 300:
            status = response.status_code
            permanent = 400 <= status < 500 and status not in (408, 425, 429)
            raise SendFailed(f"{self.name} provider answered HTTP {status}: "
                             f"{response.text[:200]}", permanent=permanent)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        provider_id = (body.get("id") or body.get("message_id") or body.get("msgid")
                       or response.headers.get("X-Message-Id"))
        return str(provider_id) if provider_id else None

    def close(self) -> None:
        self.session.close()


def build(settings: NotifySettings) -> dict[str, Channel]:
    """Every channel, configured from the settings (unconfigured ones fail visibly)."""
    channels: dict[str, Channel] = {
        "email": EmailChannel(settings) if settings.smtp_host
        else Unconfigured("email", "SMTP_HOST"),
        "sms": WebhookChannel("sms", settings.sms_webhook_url, settings)
        if settings.sms_webhook_url else Unconfigured("sms", "SMS_WEBHOOK_URL"),
        "wechat": WebhookChannel("wechat", settings.wechat_webhook_url, settings)
        if settings.wechat_webhook_url else Unconfigured("wechat", "WECHAT_WEBHOOK_URL"),
    }
    return channels
