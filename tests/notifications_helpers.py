"""Set-up for notifications tests against the running stack: rosters, claims, event capture."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika
import pymongo

from services.kit import broker
from services.kit.config import Settings
from services.kit.event_publisher import Publisher
from tests.booking_helpers import School, Venue, group
from tests.support import wait_for

CONSENT_URL = re.compile(r"(https?://\S+/v1/consents/[A-Za-z0-9_.-]+)")
SURVEY_URL = re.compile(r"(https?://\S+/v1/surveys/[A-Za-z0-9_.-]+)")


def tag() -> str:
    return uuid.uuid4().hex[:8]


def roster_path(school_id: str, label: str) -> str:
    return f"/v1/schools/{school_id}/rosters/{quote(label)}"


def json_roster(tag_: str, pupils: int, start: int = 0, two_guardians: int = 0,
                channel: str = "email", **contact: Any) -> dict[str, Any]:
    """`pupils` pupils with one guardian each, the first `two_guardians` with two."""
    out = []
    for i in range(start, start + pupils):
        guardians = [{"name": f"家长{i}", "relation": "母亲",
                      "email": f"g{i}.{tag_}@example.com", "channel": channel, **contact}]
        if i - start < two_guardians:
            guardians.append({"name": f"家长{i}B", "relation": "父亲", "language": "en",
                              "email": f"g{i}b.{tag_}@example.com"})
        out.append({"name": f"学生{i}", "ref": f"{i:03d}", "guardians": guardians})
    return {"pupils": out}


def csv_roster(tag_: str, pupils: int, start: int = 0) -> str:
    lines = ["学生姓名,学号,家长姓名,关系,手机,邮箱,语言,通知方式"]
    for i in range(start, start + pupils):
        lines.append(f"学生{i},{i:03d},家长{i},父亲,1390000{i:04d},g{i}.{tag_}@example.com,"
                     f"zh-CN,email")
    return "\n".join(lines) + "\n"


def put_roster(client: Any, school_id: str, label: str, body: Any) -> Any:
    if isinstance(body, str):
        return client.put(roster_path(school_id, label), data=body.encode(),
                          headers={"Content-Type": "text/csv; charset=utf-8"})
    return client.put(roster_path(school_id, label), json=body)


def claim(school: School, session_id: str, *groups: dict[str, Any]) -> dict[str, Any]:
    response = school.claim(session_id, *groups)
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert body["status"] == "confirmed", body
    return body


def log(client: Any, claim_id: str, limit: int = 200) -> list[dict[str, Any]]:
    """Every delivery-log entry of a claim, following the cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"claim_id": claim_id, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = client.get("/v1/notifications", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


class Events:
    """Every event of `producers` (booking and venues by default) published since it was
    made (own queue)."""

    def __init__(self, amqp_url: str, producers: tuple[str, ...] = ("booking", "venues")
                 ) -> None:
        self.amqp_url = amqp_url
        self.connection = pika.BlockingConnection(broker.parameters(amqp_url, heartbeat=0))
        self.channel = self.connection.channel()
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        for producer in producers:
            broker.declare_events_exchange(self.channel, producer)
            self.channel.queue_bind(self.queue, broker.events_exchange(producer),
                                    routing_key="#")
        self.seen: list[dict[str, Any]] = []

    def of(self, event_type: str, **data: Any) -> list[dict[str, Any]]:
        while True:
            method, _, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                break
            self.seen.append(json.loads(body))
        return [e for e in self.seen if e["type"] == event_type
                and all(e["data"].get(k) == v for k, v in data.items())]

    def one(self, event_type: str, **data: Any) -> dict[str, Any]:
        return wait_for(lambda: (self.of(event_type, **data) or [None])[0], timeout=30,
                        message=f"{event_type} {data}")

    def publish(self, envelope: dict[str, Any]) -> None:
        """Publish an envelope as the relay does (e.g. a replay of one already delivered)."""
        publisher = Publisher(Settings(amqp_url=self.amqp_url))
        try:
            publisher.publish(envelope)
        finally:
            publisher.close()

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


class ServiceLog:
    """The notifications service's log lines (JSON) in the stack's log directory: how a test
    sees that a handler without an applied-events ledger ran (it leaves nothing stored when
    it has nothing new to do)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir

    def lines(self, text: str, correlation_id: str | None = None) -> list[dict[str, Any]]:
        found = []
        for path in self.log_dir.glob("*notifications*.log"):
            for raw in path.read_text(errors="replace").splitlines():
                if text not in raw:
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if text in str(line.get("message")) and (
                        correlation_id is None or line.get("correlation_id") == correlation_id):
                    found.append(line)
        return found

    def wait_lines(self, text: str, count: int = 1, correlation_id: str | None = None
                   ) -> list[dict[str, Any]]:
        def enough() -> list[dict[str, Any]] | None:
            got = self.lines(text, correlation_id)
            return got if len(got) >= count else None

        return wait_for(enough, timeout=30,
                        message=f"{count} log line(s) {text!r} ({correlation_id})")


class Ledger:
    """The notifications service's record of applied events (handlers with a ledger)."""

    def __init__(self, mongo_url: str) -> None:
        self.client = pymongo.MongoClient(mongo_url, tz_aware=True)
        self.applied = self.client.kepu_notifications.applied_events

    def wait_applied(self, handler: str, event_id: str, repeats: int = 0) -> dict[str, Any]:
        query: dict[str, Any] = {"_id": f"notifications.{handler}:{event_id}",
                                 "state": "applied"}
        if repeats:
            query["repeats"] = {"$gte": repeats}
        return wait_for(lambda: self.applied.find_one(query), timeout=30,
                        message=f"{handler} applied {event_id} (repeats >= {repeats})")

    def close(self) -> None:
        self.client.close()


__all__ = ["CONSENT_URL", "SURVEY_URL", "Events", "Ledger", "School", "ServiceLog", "Venue",
           "claim", "csv_roster", "group", "json_roster", "log", "put_roster", "roster_path",
           "tag"]
