"""Identity's links, delivered: an invitation to join an organisation, a password reset.

Identity publishes `identity.invitation_sent` and `identity.password_reset_requested` with
the channel (email or sms), the full contact, the link and the person's language; this
turns each into one message on the same delivery path as every notice (log, retries,
masking, dedup), with two rules of its own:

- Quiet hours: an invitation is sent by someone else, and its link lasts 7 days, so an
  SMS at 23:00 waits for 07:00 like any notice (e-mail goes at once, as always). A reset
  is asked for by the person themself, who is waiting for it, and its link lasts one
  hour: it goes at once on every channel, day or night — held until 07:00 it would
  arrive dead.
- The link is a credential. It is never logged; the stored text keeps it only until the
  message is settled (then a redacted copy replaces it, delivery.Delivery); a message
  whose link expired before it could go is suppressed. Dedup is by invitation (or
  person) and a digest of the link, so a resent invitation (a new link) is a new message
  and a repeated event is not.

These messages belong to no school: the schools' delivery log never lists them.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from services.contracts.notifications import normalize_mobile
from services.kit import clock
from services.notifications.delivery import Delivery
from services.notifications.masking import mask_contact
from services.notifications.messages import new_message
from services.notifications.settings import NotifySettings
from services.notifications.templates import language_of, moment, render_message

log = logging.getLogger("kepu.notifications.accounts")

WITHHELD = {"zh-CN": "〔链接已发送，不予保存〕", "en": "[link sent, not kept]"}
ROLE_NAMES = {
    "zh-CN": {"admin": "平台管理员", "district": "教育局工作人员", "finance": "教育局财务人员",
              "venue": "场馆工作人员", "school": "学校工作人员"},
    "en": {"admin": "a platform administrator", "district": "district education staff",
           "finance": "district finance staff", "venue": "venue staff",
           "school": "school staff"},
}


def _recipient(channel: str, contact: str) -> tuple[str, str | None]:
    """(the contact as the channel takes it, its masked form)."""
    contact = contact.strip()
    if channel == "sms":
        contact = normalize_mobile(contact) or contact
    return contact, mask_contact(channel, contact)


def _link_digest(link: str) -> str:
    return hashlib.sha256(link.encode()).hexdigest()[:24]


def _expiry(raw: str | None) -> str | None:
    try:
        return clock.stamp(clock.parse(raw)) if raw else None
    except ValueError:
        return None


def compose(kind: str, data: dict[str, Any], event_id: str, settings: NotifySettings,
            now: datetime | None = None) -> dict[str, Any]:
    """The one message of an `invitation` or `password_reset` event."""
    now = now or clock.now()
    language = language_of(data.get("language"))
    channel = data["channel"]
    contact, masked = _recipient(channel, data["contact"])
    link = data["link"]
    expires_at = _expiry(data.get("expires_at"))
    values = {"link": link, "org_name": data.get("org_name") or "",
              "role_name": ROLE_NAMES[language].get(data.get("role") or "", data.get("role")),
              "expires": moment(expires_at, language) if expires_at else ""}
    rendered = render_message(kind, language, values)
    text = rendered.text_for(channel)
    owner = data.get("invitation_id") if kind == "invitation" else data.get("user_id")
    return new_message(
        key=f"{kind}|{owner}|{_link_digest(link)}", kind=kind, template=rendered.template,
        language=language, channel=channel, contact=contact, masked=masked,
        subject=rendered.subject, text=text, settings=settings, now=now,
        quiet=kind == "invitation", text_redacted=text.replace(link, WITHHELD[language]),
        link_expires_at=expires_at, event_id=event_id, org_id=data.get("org_id"),
        invitation_id=data.get("invitation_id"), user_id=data.get("user_id"))


def deliver(delivery: Delivery, kind: str, data: dict[str, Any], event_id: str
            ) -> dict[str, int]:
    """Store the message (a repeat is skipped) and send it now unless quiet hours hold it."""
    doc = compose(kind, data, event_id, delivery.settings)
    counts = delivery.store_and_send([doc])
    log.info("%s message %s to %s: %s", kind, doc["_id"], doc["recipient_masked"],
             counts or "already stored")
    return counts
