"""Rate cards: the tutor subsidy per hour by level, versioned by the day they take effect.

A card is never edited: a new rate is a new card with a later `effective_from`, and a
visit is paid by the card in force on the visit's day, so a rate change never rewrites
what was already accrued. Amounts are fen per hour; a visit's subsidy is rounded half-up
to the fen, then cut to `cap_per_visit_fen`. `cap_per_school_term_fen` limits what one
school's visits may draw in a term (see `SchoolCaps`).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.funding.requests import Requests
from services.kit import clock
from services.kit.errors import Conflict
from services.kit.ids import new_id


class NoRate(Exception):
    """The card in force has no rate for the tutor's level."""


def subsidy(card: dict[str, Any], level: str, hours: float) -> tuple[int, str | None]:
    """(fen, what capped it or None) for `hours` of a tutor of `level` under `card`."""
    rate = (card.get("rates") or {}).get(level)
    if rate is None:
        raise NoRate(level)
    amount = int((Decimal(int(rate)) * Decimal(str(hours))).quantize(Decimal(1), ROUND_HALF_UP))
    cap = card.get("cap_per_visit_fen")
    if cap is not None and amount > int(cap):
        return int(cap), "visit"
    return amount, None


class RateCards:
    def __init__(self, db: Database, requests: Requests) -> None:
        self.cards = db.rate_cards
        self.requests = requests

    def ensure_indexes(self) -> None:
        self.cards.create_index("district")

    def create(self, district: str, data: dict[str, Any], sub: str, key: str | None = None
               ) -> dict[str, Any]:
        """Publish a card; a second card for the same day is a Conflict, but a retry of
        the request that published it (the same Idempotency-Key) answers that card."""
        day = data["effective_from"].isoformat()
        request = self.requests.bind("rate_card", district, sub, key, new_id("req"), data)
        doc = {"_id": f"{district}|{day}", "district": district, "effective_from": day,
               "rates": {k: int(v) for k, v in data["rates"].items()},
               "cap_per_visit_fen": data.get("cap_per_visit_fen"),
               "cap_per_school_term_fen": data.get("cap_per_school_term_fen"),
               "note": data.get("note"), "created_by": sub, "created_at": clock.stamp(),
               "request": request if key else None}
        try:
            self.cards.insert_one(doc)
        except DuplicateKeyError:
            existing = self.cards.find_one({"_id": doc["_id"]})
            if key and existing is not None and existing.get("request") == request:
                return existing
            raise Conflict(f"a rate card effective {day} exists; cards are never changed, "
                           "publish one with a later effective_from",
                           {"effective_from": ["a card with this date exists"]},
                           code="rate-card-exists") from None
        return doc

    def in_force(self, district: str, day: date | str) -> dict[str, Any] | None:
        """The card with the latest `effective_from` on or before `day`."""
        text = day if isinstance(day, str) else day.isoformat()
        found = list(self.cards.find({"district": district, "effective_from": {"$lte": text}})
                     .sort("effective_from", DESCENDING).limit(1))
        return found[0] if found else None

    def all(self, district: str) -> list[dict[str, Any]]:
        return list(self.cards.find({"district": district}).sort("effective_from", ASCENDING))


def view(card: dict[str, Any]) -> dict[str, Any]:
    return {"rate_card_id": card["_id"], **{k: card.get(k) for k in (
        "district", "effective_from", "rates", "cap_per_visit_fen", "cap_per_school_term_fen",
        "note", "created_by", "created_at")}}


def map_key(text: str) -> str:
    """A visit id as a key of a stored map ('.' and '$' would be read as paths)."""
    return text.replace(".", "_").replace("$", "_")


class SchoolCaps:
    """What each school's visits have drawn in a term, against the card's per-school cap.

    One document per (district, term, school) holding `used` and a map of the visits that
    drew it, so reserving is a conditional update keyed by visit (a repeat reserves once)
    and a cancelled visit gives its share back.
    """

    def __init__(self, db: Database) -> None:
        self.caps = db.school_caps

    @staticmethod
    def _id(district: str, term: str, school_id: str) -> str:
        return f"{district}|{term}|{school_id}"

    def reserve(self, district: str, term: str, school_id: str, visit_id: str, amount: int,
                cap: int) -> int:
        """Reserve up to `amount` under `cap` for the visit; answers what was granted."""
        key, visit = self._id(district, term, school_id), map_key(visit_id)
        try:
            self.caps.insert_one({"_id": key, "used": 0, "visits": {}})
        except DuplicateKeyError:
            pass
        for _ in range(100):
            doc = self.caps.find_one({"_id": key})
            assert doc is not None
            if visit in (doc.get("visits") or {}):
                return int(doc["visits"][visit])
            granted = max(0, min(amount, cap - int(doc["used"])))
            done = self.caps.update_one(
                {"_id": key, "used": doc["used"], f"visits.{visit}": {"$exists": False}},
                {"$inc": {"used": granted}, "$set": {f"visits.{visit}": granted}})
            if done.modified_count:
                return granted
        raise RuntimeError(f"school cap {key} is too contended")  # pragma: no cover

    def release(self, district: str, term: str, school_id: str, visit_id: str) -> None:
        key, visit = self._id(district, term, school_id), map_key(visit_id)
        for _ in range(100):
            doc = self.caps.find_one({"_id": key})
            if doc is None or visit not in (doc.get("visits") or {}):
                return
            amount = doc["visits"][visit]
            done = self.caps.update_one({"_id": key, f"visits.{visit}": amount},
                                        {"$inc": {"used": -amount},
                                         "$unset": {f"visits.{visit}": ""}})
            if done.modified_count:
                return
