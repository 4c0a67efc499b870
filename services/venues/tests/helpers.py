"""Building sessions for unit tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.contracts.venues import SessionDraft
from services.kit import clock
from services.kit.actor import Actor
from services.kit.boundary import load

BASE = {"title": "星空探秘 Stargazing", "category": "science", "audience": "students",
        "grades": [3, 6], "capacity": 50, "price_fen": 0, "claim_policy": "first_come"}


def at(**delta: float) -> str:
    return clock.stamp(clock.now() + timedelta(**delta))


def publish(repo: Any, venue: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {**BASE, "starts_at": at(days=7), "ends_at": at(days=7, hours=2), **overrides}
    actor = Actor(sub="staff", role="venue", org=venue["_id"])
    return repo.sessions.publish(venue, load(SessionDraft, body), actor)
