"""Set-up for booking tests: a venue with sessions, schools with tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


class Venue:
    def __init__(self, api: Any, **overrides: Any) -> None:
        self.api = api
        self.venue = api.register_venue(**overrides)
        self.id = self.venue["venue_id"]
        self.client = api.as_("venue", self.id)

    def publish(self, **overrides: Any) -> dict[str, Any]:
        body = {"title": "星空探秘 Stargazing", "category": "science", "audience": "students",
                "grades": [1, 6], "starts_at": iso(timedelta(days=3)),
                "ends_at": iso(timedelta(days=3, hours=2)), "capacity": 100, "price_fen": 0,
                "claim_policy": "first_come", **overrides}
        response = self.client.post(f"/v1/venues/{self.id}/sessions", json=body)
        assert response.status_code == 201, response.text
        return response.json()


class School:
    def __init__(self, api: Any, **overrides: Any) -> None:
        self.school = api.register_school(**overrides)
        self.id = self.school["school_id"]
        self.client = api.as_("school", self.id)

    def claim(self, session_id: str, *groups: dict[str, Any], **extra: Any) -> Any:
        return self.client.post("/v1/claims", json={"session_id": session_id,
                                                    "groups": list(groups), **extra},
                                headers=extra.pop("headers", None))


def group(label: str, students: int = 30, teachers: int = 2, grade: int = 5) -> dict[str, Any]:
    return {"label": label, "grade": grade, "students": students, "teachers": teachers}
