"""Claims, trips and rosters for the notifications unit tests."""

from __future__ import annotations

from typing import Any

TRIP = {
    "session_id": "ses_1", "title": "星空探秘：天文馆学生专场", "venue_id": "ven_1",
    "venue_name": "上海天文馆", "venue_address": "上海市浦东新区临港大道380号",
    "starts_at": "2026-11-28T01:30:00.000000Z", "ends_at": "2026-11-28T03:30:00.000000Z",
    "timezone": "Asia/Shanghai", "what_to_bring": "水杯、笔记本", "price_fen": 0,
}


def groups(*labels: str) -> list[dict[str, Any]]:
    return [{"label": label, "grade": 5, "students": 20, "teachers": 2} for label in labels]


def confirmed(claim_id: str = "clm_1", school_id: str = "sch_1",
              labels: tuple[str, ...] = ("五年级(1)班",), **trip: Any) -> dict[str, Any]:
    return {"claim_id": claim_id, "school_id": school_id, "school_name": "浦东新区实验小学",
            "session_id": trip.get("session_id", TRIP["session_id"]),
            "groups": groups(*labels), "seats": 22 * len(labels), "trip": {**TRIP, **trip}}


def cancelled(claim_id: str = "clm_1", school_id: str = "sch_1",
              labels: tuple[str, ...] = ("五年级(1)班",), by: str = "school",
              previous: str = "confirmed", reason: str = "天气原因") -> dict[str, Any]:
    return {"claim_id": claim_id, "school_id": school_id, "session_id": TRIP["session_id"],
            "previous_status": previous, "cancelled_by": by, "reason": reason,
            "groups": groups(*labels), "trip": TRIP}


def guardian(name: str, n: int, channel: str = "email", **extra: Any) -> dict[str, Any]:
    return {"name": name, "relation": "母亲", "phone": f"138{n:08d}",
            "email": f"parent{n}@example.com", "language": "zh-CN", "channel": channel,
            **extra}


def pupils(count: int, start: int = 0, channel: str = "email") -> list[dict[str, Any]]:
    return [{"name": f"学生{start + i}", "guardians": [guardian(f"家长{start + i}", start + i,
                                                               channel)]}
            for i in range(count)]
