"""One outgoing message as stored: the one shape every notice, survey link and account
link takes, so delivery, retries, quiet hours, the delivery log and dedup treat all alike.

- `dedup_key` is deterministic (the caller's), its hash the message id: composing the
  same message twice stores it once (a unique index).
- `quiet`: whether quiet hours hold it back on an intrusive channel (False for a
  password reset the person is waiting for).
- `secret`: the text carries a link that grants something (an invitation, a reset). The
  text is kept only until the message is settled, then replaced by `text_redacted`
  (delivery.Delivery), and `link_expires_at` suppresses a message whose link died while
  it waited.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from services.kit import clock
from services.kit.pages import sort_key
from services.notifications.settings import NotifySettings

REFS = ("claim_id", "visit_id", "survey_id", "school_id", "session_id", "label", "pupil_id",
        "guardian_id", "guardian_name", "event_id", "org_id", "invitation_id", "user_id")


def message_id(key: str) -> str:
    return f"msg_{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def new_message(*, key: str, kind: str, template: str, language: str, channel: str | None,
                contact: str | None, masked: str | None, subject: str, text: str,
                settings: NotifySettings, now: datetime, quiet: bool = True,
                text_redacted: str | None = None, link_expires_at: str | None = None,
                **refs: Any) -> dict[str, Any]:
    """The message document, ready to store: queued, deferred (quiet hours) or suppressed
    (no channel left)."""
    unknown = set(refs) - set(REFS)
    if unknown:
        raise TypeError(f"unknown message fields {sorted(unknown)}")
    created = clock.stamp(now)
    mid = message_id(key)
    doc: dict[str, Any] = {
        "_id": mid, "dedup_key": key, "kind": kind, "template": template,
        "language": language, **{ref: refs.get(ref) for ref in REFS},
        "channel": channel, "recipient": contact, "recipient_masked": masked,
        "subject": subject, "text": text, "quiet": quiet,
        "attempts": 0, "provider_id": None, "error": None, "tries": {},
        "created_at": created, "updated_at": created, "sent_at": None,
        "sort_key": sort_key(created, mid), "lease_until": "",
    }
    if text_redacted is not None:
        doc.update(secret=True, text_redacted=text_redacted)
    if link_expires_at is not None:
        doc["link_expires_at"] = link_expires_at
    if channel is None:
        doc.update(status="suppressed", due_at=None,
                   error="no channel left: the guardian opted out of every channel "
                         "they have a contact for")
        return doc
    hold = settings.quiet.hold(channel, now) if quiet else None
    if hold is not None:
        doc.update(status="deferred", due_at=clock.stamp(hold))
    else:
        doc.update(status="queued", due_at=created)
    return doc
