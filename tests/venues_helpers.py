"""Set-up for venues tests against the running stack: a venue's staff, drafts, an event tap."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pika

from services.kit import broker
from services.kit.actor import Actor, actor_key, sign


def iso(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


def signed(role: str, org: str | None = None) -> dict[str, Any]:
    """An actor as the gateway sends it, for tests that call the venues RPC directly."""
    return sign(Actor(sub=f"{role}-test", role=role, org=org),
                actor_key(os.environ["KEPU_JWT_SECRET"]))


def draft(**overrides: Any) -> dict[str, Any]:
    return {"title": "星空探秘 Stargazing", "category": "science", "audience": "students",
            "grades": [3, 6], "starts_at": iso(days=10), "ends_at": iso(days=10, hours=2),
            "capacity": 60, "price_fen": 0, "claim_policy": "first_come", **overrides}


class Staff:
    """A registered venue and an HTTP client holding its staff token."""

    def __init__(self, api: Any, **venue: Any) -> None:
        self.venue = api.register_venue(**venue)
        self.id = self.venue["venue_id"]
        self.client = api.as_("venue", self.id)

    def publish(self, **overrides: Any) -> dict[str, Any]:
        response = self.client.post(f"/v1/venues/{self.id}/sessions", json=draft(**overrides))
        assert response.status_code == 201, response.text
        return response.json()

    def sessions(self) -> list[dict[str, Any]]:
        page = self.client.get("/v1/sessions", params={"venue_id": self.id, "status": "all",
                                                       "limit": 100})
        assert page.status_code == 200, page.text
        return page.json()["items"]


class VenueEvents:
    """Every venues.* event published since it was made, read from a queue of its own."""

    def __init__(self, amqp_url: str) -> None:
        self.connection = pika.BlockingConnection(broker.parameters(amqp_url, heartbeat=0))
        self.channel = self.connection.channel()
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        broker.declare_events_exchange(self.channel, "venues")
        self.channel.queue_bind(self.queue, broker.events_exchange("venues"), routing_key="#")
        self.seen: list[dict[str, Any]] = []

    def of(self, event_type: str, **data: Any) -> list[dict[str, Any]]:
        while True:
            method, _, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                break
            self.seen.append(json.loads(body))
        return [e for e in self.seen if e["type"] == event_type
                and all(e["data"].get(k) == v for k, v in data.items())]

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()
