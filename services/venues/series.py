"""A series: one session per occurrence, at the same wall-clock time in the venue's zone.

Publishing is all or nothing. Every occurrence is checked before anything is written;
then the sessions are inserted unpublished (invisible), the series document is inserted
(the commit point), the sessions are made visible, and only then are their
`session_published` events staged, on the series document. `Series.repair` finishes a
committed series an interrupted process left behind and removes uncommitted sessions.

A retry of the same request (the same `Idempotency-Key`, see `once`) publishes under the
same series id, and an occurrence's session id derives from the series id and its index,
so two attempts write the very same documents: what the other already wrote is skipped,
never doubled.

Venues think in local dates and times ("every Saturday at 09:30 until the end of the
holiday"); Kepu stores UTC. The first occurrence (`starts_at`/`ends_at` as sent) fixes the
local time of day and the length; each occurrence is that local time on its own date,
converted to UTC with the zone's rules on that date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.contracts.venues import MAX_OCCURRENCES, session_errors
from services.kit import clock
from services.kit.errors import ValidationFailed
from services.kit.outbox import add_events

DUPLICATE_KEY = 11000
REPAIR_AFTER_S = 60  # a committed series still unpublished this long was interrupted
ABANDON_AFTER_S = 600  # unpublished sessions with no series this long are debris


@dataclass(frozen=True)
class Occurrence:
    """When one session of a series runs (UTC stamps) and its local date."""

    day: date
    starts_at: str
    ends_at: str
    window_closes_at: str | None


def occurrence_id(series_id: str, index: int) -> str:
    """The session id of a series' `index`-th occurrence: the same on every attempt."""
    return f"ses_{series_id.removeprefix('ser_')}{index:03d}"


def insert_missing(collection: Collection, docs: list[dict[str, Any]]) -> None:
    """Insert `docs`, skipping those whose `_id` another attempt inserted already."""
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])) \
                or exc.details.get("writeConcernErrors"):
            raise


def occurrence_days(first_day: date, repeat: dict[str, Any]) -> list[date]:
    """The local dates of a series, in order; ValidationFailed names the `repeat` field."""
    if repeat.get("dates"):
        return sorted(repeat["dates"])
    weekly = repeat["weekly"]
    until: date = weekly["until"]
    if until < first_day:
        raise ValidationFailed("repeat.weekly.until: before the first occurrence",
                               {"repeat.weekly.until": [
                                   f"must not be before the first occurrence ({first_day})"]})
    weekdays = set(weekly["weekdays"])
    days = []
    day = first_day
    while day <= until:
        if day.isoweekday() in weekdays:
            days.append(day)
            if len(days) > MAX_OCCURRENCES:
                raise ValidationFailed("repeat: too many occurrences", {"repeat.weekly.until": [
                    f"a series has at most {MAX_OCCURRENCES} sessions"]})
        day += timedelta(days=1)
    if not days:
        raise ValidationFailed("repeat: no occurrence", {"repeat.weekly.weekdays": [
            f"no such weekday between {first_day} and {until}"]})
    return days


def occurrences(draft: dict[str, Any], timezone: str) -> list[Occurrence]:
    """Every occurrence of the series `draft` describes, in the zone `timezone`."""
    zone = ZoneInfo(timezone)
    start = clock.parse(draft["starts_at"]).astimezone(zone)
    end = clock.parse(draft["ends_at"]).astimezone(zone)
    span_days = (end.date() - start.date()).days
    lead = None
    if draft.get("window_closes_at"):
        lead = clock.parse(draft["starts_at"]) - clock.parse(draft["window_closes_at"])
    result = []
    for day in occurrence_days(start.date(), draft["repeat"]):
        local_start = datetime.combine(day, start.timetz().replace(tzinfo=None), tzinfo=zone)
        local_end = datetime.combine(day + timedelta(days=span_days),
                                     end.timetz().replace(tzinfo=None), tzinfo=zone)
        window = clock.stamp(local_start - lead) if lead is not None else None
        result.append(Occurrence(day, clock.stamp(local_start), clock.stamp(local_end), window))
    return result


def check_occurrences(draft: dict[str, Any], found: list[Occurrence], now: datetime) -> None:
    """Refuse the whole series if any occurrence breaks a session rule (all or nothing)."""
    errors: dict[str, list[str]] = {}
    by_day = {day: i for i, day in enumerate(draft["repeat"].get("dates") or [])}
    for occurrence in found:
        values = {**draft, "starts_at": occurrence.starts_at, "ends_at": occurrence.ends_at,
                  "window_closes_at": occurrence.window_closes_at}
        problems = session_errors(values, now)
        if not problems:
            continue
        if occurrence.day in by_day:
            name = f"repeat.dates.{by_day[occurrence.day]}"
        elif occurrence is found[0]:
            name = "starts_at"
        else:
            name = "repeat.weekly"
        for field, messages in problems.items():
            errors.setdefault(name, []).extend(
                f"{occurrence.day}: {field} {message}" for message in messages)
    if errors:
        raise ValidationFailed(f"invalid fields: {', '.join(sorted(errors))}", errors)


class Series:
    def __init__(self, series: Collection, sessions: Collection) -> None:
        self.series = series
        self.sessions = sessions

    def publish(self, series_id: str, venue_id: str, docs: list[dict[str, Any]],
                events: list[dict[str, Any]]) -> None:
        """Insert `docs` (unpublished) and make them visible together, with their events.

        Documents another attempt of the same series wrote already are kept, not doubled.
        """
        try:
            insert_missing(self.sessions, docs)
            try:
                self.series.insert_one({
                    "_id": series_id, "series_id": series_id, "venue_id": venue_id,
                    "session_ids": [d["_id"] for d in docs], "state": "committed",
                    "created_at": clock.stamp(),
                    # a map, not an array of sub-documents (see services.kit.mongo)
                    "pending_events": {f"{i:04d}": env for i, env in enumerate(events)}})
            except DuplicateKeyError:
                pass  # another attempt of the same request committed it first
        except Exception:
            if self.series.find_one({"_id": series_id}, {"_id": 1}) is None:
                self.sessions.delete_many({"series_id": series_id, "published": False})
                raise
        self._finish(series_id)

    def finish(self, series_id: str) -> bool:
        """Make a committed series visible (a no-op once it is); False if it never committed."""
        if self.series.find_one({"_id": series_id}, {"_id": 1}) is None:
            return False
        self._finish(series_id)
        return True

    def _finish(self, series_id: str) -> None:
        self.sessions.update_many({"series_id": series_id, "published": False},
                                  {"$set": {"published": True}})
        doc = self.series.find_one({"_id": series_id, "state": "committed"})
        if doc is None:
            return
        self.series.update_one(
            {"_id": series_id, "state": "committed"},
            add_events({"$set": {"state": "published"}, "$unset": {"pending_events": ""}},
                       *(env for _, env in sorted((doc.get("pending_events") or {}).items()))))

    def repair(self) -> int:
        """Finish committed series left half-way; drop sessions whose series never committed."""
        repaired = 0
        for doc in self.series.find({"state": "committed",
                                     "created_at": {"$lt": clock.later(-REPAIR_AFTER_S)}},
                                    {"_id": 1}):
            self._finish(doc["_id"])
            repaired += 1
        cutoff = clock.later(-ABANDON_AFTER_S)
        stale = self.sessions.find({"published": False, "created_at": {"$lt": cutoff}},
                                   {"series_id": 1})
        for series_id in {d.get("series_id") for d in stale}:
            if series_id and self.series.find_one({"_id": series_id}, {"_id": 1}) is None:
                # only the old debris: a retry of the same series may be writing anew
                self.sessions.delete_many({"series_id": series_id, "published": False,
                                           "created_at": {"$lt": cutoff}})
                repaired += 1
        return repaired
