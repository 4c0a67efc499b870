"""The catalogue (课程菜单): filtered, paginated sessions, by time or by distance.

The stand-in database has no geo operators, so `near` ranks venues (a bounding box on
their indexed `location.lat`/`location.lon` when `radius_km` is given, then haversine in
Python) and reads the nearest venues' sessions until a page is full: distance order, then
time. Pages follow a cursor: the last item's sort key (time order) or its distance and
sort key (distance order), never an offset. Sort keys and the page cut are `kit.pages`.
"""

from __future__ import annotations

import base64
import json
import math
from itertools import groupby
from typing import Any

from pymongo.collection import Collection

from services.contracts.venues import CATALOGUE_STATUSES, CatalogueQuery
from services.kit import clock, pages
from services.kit.boundary import load
from services.kit.errors import validation_error
from services.kit.pages import sort_key
from services.venues.sessions import HIDDEN, view

EARTH_RADIUS_KM = 6371.0088
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_km: float, prefix: str = "") -> dict[str, Any]:
    """A filter on `<prefix>lat`/`<prefix>lon` for a box holding every point within reach."""
    dlat = radius_km / KM_PER_DEGREE
    box: dict[str, Any] = {f"{prefix}lat": {"$gte": lat - dlat, "$lte": lat + dlat}}
    if lat - dlat <= -90 or lat + dlat >= 90:
        return box  # the circle covers a pole: every longitude
    dlon = radius_km / (KM_PER_DEGREE * math.cos(math.radians(abs(lat) + dlat)))
    if dlon < 180 and -180 <= lon - dlon and lon + dlon <= 180:
        box[f"{prefix}lon"] = {"$gte": lon - dlon, "$lte": lon + dlon}
    return box  # a box across the antimeridian keeps every longitude: still a superset


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, size: int) -> list[Any]:
    """The position a cursor of ordering `kind` ("t" time, "d" distance) carries."""
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise validation_error("cursor", "not a cursor this list gave out") from None
    if not isinstance(position, list) or len(position) != size or position[0] != kind:
        raise validation_error("cursor", "not a cursor of this ordering (near or not)")
    return position


def _statuses(raw: str) -> set[str]:
    wanted = {s.strip() for s in raw.split(",") if s.strip()}
    return set(CATALOGUE_STATUSES) if "all" in wanted else wanted


def status_filter(wanted: set[str], now: str) -> dict[str, Any]:
    """Stored status is open/cancelled; started and past come from the clock.

    Times are compared through `sort_key` (sort_key(starts_at, id)) and `end_key`
    (sort_key(ends_at)): see `sessions`. "~" sorts after every id, so
    sort_key > sort_key(now, "~") means starts_at > now.
    """
    after_start, at_now = sort_key(now, "~"), sort_key(now)
    timely = {
        frozenset({"open"}): {"sort_key": {"$gt": after_start}},
        frozenset({"started"}): {"sort_key": {"$lt": after_start},
                                 "end_key": {"$gt": at_now}},
        frozenset({"past"}): {"end_key": {"$lte": at_now}},
        frozenset({"open", "started"}): {"end_key": {"$gt": at_now}},
        frozenset({"started", "past"}): {"sort_key": {"$lt": after_start}},
        frozenset({"open", "started", "past"}): {},
    }
    live = frozenset(wanted - {"cancelled"})
    if live and live not in timely:  # open and past, without started
        parts = [{"status": "open", **timely[frozenset({"open"})]},
                 {"status": "open", **timely[frozenset({"past"})]}]
    else:
        parts = [{"status": "open", **timely[live]}] if live else []
    if "cancelled" in wanted:
        if live == frozenset({"open", "started", "past"}):
            return {}
        parts.append({"status": "cancelled"})
    return parts[0] if len(parts) == 1 else {"$or": parts}


def narrow(f: dict[str, Any], field: str, op: str, value: str) -> None:
    """Add `field op value` to `f`, keeping the tighter bound if one is there already."""
    bounds = dict(f.get(field, {}))
    if op in bounds:
        value = max(bounds[op], value) if op in ("$gt", "$gte") else min(bounds[op], value)
    bounds[op] = value
    f[field] = bounds


def query_filter(q: dict[str, Any], now: str) -> dict[str, Any]:
    """The MongoDB filter for a loaded CatalogueQuery (without the cursor)."""
    f: dict[str, Any] = {"published": True, **status_filter(_statuses(q["status"]), now)}
    if q.get("from_"):
        narrow(f, "sort_key", "$gte", sort_key(q["from_"]))
    if q.get("to"):
        narrow(f, "sort_key", "$lt", sort_key(q["to"]))
    if "grade" in q or "grade_max" in q:
        low = q.get("grade", 1)
        f["grade_min"] = {"$lte": q.get("grade_max", low)}
        f["grade_max"] = {"$gte": low}
    for key in ("category", "audience", "venue_id", "series_id", "district", "district_id"):
        if q.get(key):
            f[key] = q[key]
    if "free" in q:
        f["price_fen"] = 0 if q["free"] else {"$gt": 0}
    if q.get("available"):
        f["seats_left"] = {"$gt": 0}
    return f


class Catalogue:
    def __init__(self, sessions: Collection, venues: Collection) -> None:
        self.sessions = sessions
        self.venues = venues

    def search(self, raw: dict[str, Any]) -> dict[str, Any]:
        """`{"items": [...], "next_cursor": str | None}` for `GET /v1/sessions` args."""
        q = load(CatalogueQuery, raw)
        now = clock.stamp()
        f = query_filter(q, now)
        if q.get("near"):
            return self._by_distance(f, q, now)
        return self._by_time(f, q, now)

    def _by_time(self, f: dict[str, Any], q: dict[str, Any], now: str) -> dict[str, Any]:
        after = None
        if q.get("cursor"):
            _, after = decode_cursor(q["cursor"], "t", 2)
            # pages.page sets the key's $gt to the cursor: keep the status filter's if tighter
            after = max(str(after), (f.get("sort_key") or {}).get("$gt", ""))
        docs, last = pages.page(self.sessions, f, q["limit"], after, HIDDEN, key="sort_key")
        return {"items": [view(d, now) for d in docs],
                "next_cursor": encode_cursor(["t", last]) if last else None}

    def _by_distance(self, f: dict[str, Any], q: dict[str, Any], now: str) -> dict[str, Any]:
        """Venues ranked by distance, then each venue's sessions in time order.

        Sessions share their venue's place, so ranking the few venues (bounding box on their
        indexed location, haversine here) orders the many sessions; each venue's sessions
        are read a page at a time until the page is full.
        """
        lat, lon = q["near"]["lat"], q["near"]["lon"]
        radius = q.get("radius_km")
        after: tuple[float, str] | None = None
        if q.get("cursor"):
            _, distance, key = decode_cursor(q["cursor"], "d", 3)
            if not isinstance(distance, int | float):
                raise validation_error("cursor", "not a cursor this list gave out")
            after = (float(distance), str(key))
        where: dict[str, Any] = bounding_box(lat, lon, radius, "location.") if radius else {}
        if q.get("venue_id"):
            where["_id"] = q["venue_id"]
        for key in ("district", "district_id"):  # a venue's, copied onto its sessions
            if q.get(key):
                where[key] = q[key]
        ranked = []
        for venue in self.venues.find(where, {"location": 1}):
            distance = round(haversine_km(lat, lon, venue["location"]["lat"],
                                          venue["location"]["lon"]), 3)
            if (radius is None or distance <= radius) and (after is None or distance >= after[0]):
                ranked.append((distance, venue["_id"]))
        ranked.sort()
        limit = q["limit"]
        found: list[dict[str, Any]] = []  # each with its venue's `distance`, in page order
        for distance, group in groupby(ranked, key=lambda r: r[0]):
            ids = [venue_id for _, venue_id in group]
            g = {**f, "venue_id": ids[0] if len(ids) == 1 else {"$in": ids}}
            if after is not None and distance == after[0]:
                narrow(g, "sort_key", "$gt", after[1])
            docs = self.sessions.find(g, HIDDEN).sort("sort_key", 1).limit(limit + 1 - len(found))
            found += [{**doc, "distance": distance} for doc in docs]
            if len(found) > limit:
                break
        rows, last = pages.trim(found, limit, key="sort_key")
        cursor = encode_cursor(["d", rows[-1]["distance"], last]) if last else None
        return {"items": [view(doc, now, doc["distance"]) for doc in rows],
                "next_cursor": cursor}
