"""The delivery log as a school reads it: one entry per message, the recipient masked.

Paged by `sort_key` (kit.pages: created_at|message id), one indexed string, with an opaque
cursor.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from services.kit.actor import Actor
from services.kit.errors import ValidationFailed
from services.notifications.access import own_school, require_school
from services.notifications.repository import NotificationsRepository

LOGGED = ("claim_id", "visit_id", "survey_id", "session_id", "kind", "template", "label",
          "pupil_id", "guardian_id", "channel", "status", "attempts", "provider_id", "error",
          "due_at", "created_at", "sent_at")


def entry(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored message as listed: never the contact itself, nor the text sent."""
    return {"message_id": doc["_id"], "recipient": doc.get("recipient_masked"),
            **{field: doc.get(field) for field in LOGGED}}


def encode_cursor(sort_key: str) -> str:
    return base64.urlsafe_b64encode(sort_key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed("cursor: not a cursor this list gave out",
                               {"cursor": ["not a cursor this list gave out"]}) from None


def page(repo: NotificationsRepository, actor: Actor, query: dict[str, Any]
         ) -> dict[str, Any]:
    """`{"items": [...], "next_cursor": ...}` of the actor's school, optionally one claim's."""
    school_id = own_school(actor, "delivery log")
    filters: dict[str, Any] = {"school_id": school_id}
    if query.get("claim_id"):
        claim = repo.claim(query["claim_id"])
        if claim is not None:
            require_school(actor, claim["school_id"], "delivery log")
        filters["claim_id"] = query["claim_id"]
    if query.get("status"):
        filters["status"] = query["status"]
    after = decode_cursor(query["cursor"]) if query.get("cursor") else None
    docs, next_key = repo.messages(filters, after, int(query.get("limit") or 50))
    return {"items": [entry(d) for d in docs],
            "next_cursor": encode_cursor(next_key) if next_key else None}
