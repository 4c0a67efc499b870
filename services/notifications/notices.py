"""Composing the messages of one notice: a claim, a kind, and every guardian of its classes.

Each message has a deterministic dedup key — (kind, scope, claim, pupil, guardian, and a
keyed digest of the contact it goes to) — and an id derived from it, so composing the same
notice twice yields the same messages and the unique index lets only the first be stored;
a guardian whose contact the school corrected hears again, at the new contact (the link
sent to the old one no longer answers: consent.check_current). The scope tells notices of
one kind apart: empty for `confirmed` and `cancelled` (once per claim, whichever event says
it first), the event id for `rescheduled` (each change is news), the start time for
`reminder`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.kit import clock
from services.notifications import consent
from services.notifications.guardians import Recipient, choose_channel
from services.notifications.masking import mask_contact, mask_name
from services.notifications.messages import message_id, new_message
from services.notifications.settings import NotifySettings
from services.notifications.templates import render

WITH_CONSENT_LINK = ("confirmed", "rescheduled", "reminder", "consent_reminder")

__all__ = ["WITH_CONSENT_LINK", "compose", "dedup_key", "message_id"]


def dedup_key(kind: str, scope: str, claim_id: str, pupil_id: str, guardian_id: str,
              to: str = "") -> str:
    """`to` is the digest of the contact (consent.contact_digest), empty if there is none."""
    return f"{kind}|{scope}|{claim_id}|{pupil_id}|{guardian_id}|{to}"


def compose(claim: dict[str, Any], kind: str, recipients: list[Recipient], *,
            settings: NotifySettings, secret: str, scope: str = "",
            event_id: str | None = None, extra: dict[str, Any] | None = None,
            now: datetime | None = None) -> list[dict[str, Any]]:
    """The message documents of one notice, ready to store (status queued/deferred/suppressed).

    `claim` is the stored claim record (school, classes, trip).
    """
    now = now or clock.now()
    trip = claim["trip"]
    docs = []
    tokens: dict[tuple[str, str], str] = {}
    for rcpt in recipients:
        pupil, guardian = rcpt.pupil, rcpt.guardian
        channel, contact = choose_channel(guardian)
        to = consent.contact_digest(secret, contact) if contact else ""
        key = dedup_key(kind, scope, claim["_id"], pupil["pupil_id"], guardian["guardian_id"],
                        to)
        context: dict[str, Any] = {
            "guardian": guardian["name"], "pupil": pupil["name"], "label": rcpt.label,
            "school_name": claim.get("school_name") or "", "trip": trip,
            "reason": "", "consent_url": "", **(extra or {}),
        }
        if kind in WITH_CONSENT_LINK:
            # one link per pupil and contact: it stops working if that contact leaves the
            # pupil's guardians (consent.check_current)
            token_of = (pupil["pupil_id"], contact or "")
            token = tokens.get(token_of)
            if token is None:
                token = consent.sign(secret, claim["_id"], pupil["pupil_id"], trip["starts_at"],
                                     contact=contact)
                tokens[token_of] = token
            context["consent_url"] = consent.link(settings.public_url, token)
        language = guardian.get("language") or "zh-CN"
        notice = render(kind, language, context)
        docs.append(new_message(
            key=key, kind=kind, template=notice.template, language=language,
            channel=channel, contact=contact, masked=mask_contact(channel, contact),
            subject=notice.subject, text=notice.text_for(channel or "email"),
            settings=settings, now=now, claim_id=claim["_id"],
            school_id=claim["school_id"], session_id=claim["session_id"], label=rcpt.label,
            pupil_id=pupil["pupil_id"], guardian_id=guardian["guardian_id"],
            guardian_name=mask_name(guardian["name"]), event_id=event_id))
    return docs
