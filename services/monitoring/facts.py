"""Folding events into facts: one document per natural id, whatever order the events come in.

Each event type writes only the fields it is the authority for, so folding is
order-tolerant and idempotent without counters:

- immutable facts (a claim's school, classes and trip; a school's enrolment) are `$set`
  by every event that carries them, to the same values, in any order;
- terminal flags (`cancelled`) are set and never cleared: a cancel folded before its
  confirm still wins;
- facts that change (attendance re-recorded, a venue renamed, capacity, a visit's status,
  a survey answer changed within 7 days) carry a version and are written only by a newer
  one (`versioned`): the occurred_at stamp and event id as a sort key (kit.pages), or a
  status rank for tutor visits (booked < delivered < confirmed < cancelled).

Figures are computed from these documents at read time (figures.py), never kept as
running totals, so a replayed event and a rebuild give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.contracts.monitoring import TUTOR_VISIT
from services.contracts.terms import SHANGHAI, term_of
from services.kit import clock
from services.kit.pages import sort_key
from services.monitoring import admissions

VISIT_RANK = {"booked": 1, "delivered": 2, "confirmed": 3, "cancelled": 4}
RATED = ("content", "organisation", "safety")


def week_of(day: date) -> str:
    """The Monday of a day's week: the label the trend counts by."""
    return (day - timedelta(days=day.weekday())).isoformat()


def local_day(instant: str) -> date:
    return clock.parse(instant).astimezone(SHANGHAI).date()


def version_of(envelope: dict[str, Any]) -> str:
    return sort_key(envelope["occurred_at"], envelope["event_id"])


def _district(data: dict[str, Any]) -> dict[str, Any]:
    """A school's or venue's district: its id (None on events from before district ids),
    and its name, by which figures still find it until the migration links it."""
    return {"district_id": data.get("district_id") or None,
            "district_name": data.get("district") or ""}


def versioned(collection: Any, _id: str, field: str, version: Any,
              values: dict[str, Any], always: dict[str, Any] | None = None) -> bool:
    """Set `values` (and the version in `field`) unless an equal or newer version is there.

    Portable: a conditional update, then an upsert that only matches a document lacking the
    version; a document holding a newer version makes that upsert a duplicate key, ignored.
    `always` (immutable facts) is set either way. True when `values` were written."""
    newer = {"$set": {**values, field: version, **(always or {})}}
    if collection.update_one({"_id": _id, field: {"$lt": version}}, newer).matched_count:
        return True
    try:
        collection.update_one({"_id": _id, field: {"$exists": False}}, newer, upsert=True)
        return True
    except DuplicateKeyError:
        pass  # this version, or a newer one, is already folded
    if always:
        collection.update_one({"_id": _id}, {"$set": always})
    return False


def _groups(groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"grades": sorted({int(g["grade"]) for g in groups}),
            "students": sum(int(g["students"]) for g in groups),
            "teachers": sum(int(g["teachers"]) for g in groups),
            "by_grade": _by_grade(groups)}


def _by_grade(groups: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for g in groups:
        out[str(g["grade"])] = out.get(str(g["grade"]), 0) + int(g["students"])
    return out


def _trip(data: dict[str, Any]) -> dict[str, Any]:
    """The immutable facts of a claim, as claim_confirmed and claim_cancelled carry them."""
    trip = data["trip"]
    day = local_day(trip["starts_at"])
    return {"school_id": data["school_id"], "session_id": data["session_id"],
            "venue_id": trip["venue_id"], "starts_at": trip["starts_at"],
            "term": term_of(day), "week": week_of(day), **_groups(data["groups"])}


class Facts:
    """The fact collections and the fold of each event type into them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.folds: dict[str, Callable[[dict[str, Any]], None]] = {
            "booking.school_registered": self.school_registered,
            "venues.venue_registered": self.venue_registered,
            "venues.venue_updated": self.venue_registered,
            "venues.session_published": self.session_published,
            "venues.session_cancelled": self.session_cancelled,
            "venues.session_rescheduled": self.session_rescheduled,
            "venues.capacity_changed": self.capacity_changed,
            "booking.claim_confirmed": self.claim,
            "booking.claim_cancelled": self.claim,
            "booking.claim_waitlisted": self.claim,
            "booking.visit_attended": self.visit_attended,
            "booking.tutor_visit_booked": self.tutor_visit,
            "booking.tutor_visit_delivered": self.tutor_visit,
            "booking.tutor_visit_confirmed": self.tutor_visit,
            "booking.tutor_visit_cancelled": self.tutor_visit,
            "identity.district_registered": self.district_registered,
            "notifications.survey_opened": self.survey_opened,
            "notifications.survey_answered": self.survey_answered,
            "notifications.survey_changed": self.survey_answered,
            "funding.subsidy_paid": self.subsidy_paid,
            "admissions.booking_confirmed": self.admission,
            "admissions.booking_cancelled": self.admission,
            "admissions.checked_in": self.admission,
        }

    COLLECTIONS = ("districts", "schools", "venues", "sessions", "claims", "attendance",
                   "tutor_visits", "surveys", "answers", "subsidies", "bookings")

    def ensure_indexes(self) -> None:
        for name in ("claims", "attendance", "tutor_visits", "answers", "sessions", "surveys"):
            self.db[name].create_index("term")
        for name in ("schools", "venues"):
            self.db[name].create_index("district_id")
            self.db[name].create_index("district_name")
        for name in ("claims", "attendance", "tutor_visits", "answers"):
            self.db[name].create_index("school_id")
        for name in ("claims", "attendance", "tutor_visits"):
            self.db[name].create_index("venue_id")
        self.db.sessions.create_index("venue_id")
        self.db.subsidies.create_index("term")
        admissions.ensure_indexes(self.db)

    def fold(self, envelope: dict[str, Any]) -> bool:
        """Apply one event; False for a type monitoring does not read."""
        fold = self.folds.get(envelope["type"])
        if fold is None:
            return False
        fold(envelope)
        return True

    def fold_many(self, envelopes: list[dict[str, Any]]) -> int:
        """Apply a batch of events, as folding them one by one in the order they occurred
        would: the claims' in one command, the rest one by one; the number folded."""
        claims: dict[str, dict[str, Any]] = {}
        folded = 0
        for envelope in sorted(envelopes, key=version_of):
            if envelope["type"] in self.CLAIMS:
                claim_id, fields = claim_fields(envelope)
                claims.setdefault(claim_id, {}).update(fields)
                folded += 1
            else:
                folded += self.fold(envelope)
        if claims:
            self.db.claims.bulk_write([UpdateOne({"_id": k}, {"$set": v}, upsert=True)
                                       for k, v in claims.items()], ordered=False)
        return folded

    def drop(self) -> None:
        for name in self.COLLECTIONS:
            self.db[name].drop()

    # -- directory -----------------------------------------------------------------------
    def school_registered(self, envelope: dict[str, Any]) -> None:
        d = envelope["data"]
        versioned(self.db.schools, d["school_id"], "v", version_of(envelope), {
            "name": d["name"], **_district(d), "rural": bool(d.get("rural")),
            "under_resourced": bool(d.get("under_resourced")), "students": int(d["students"])})

    def venue_registered(self, envelope: dict[str, Any]) -> None:
        d = envelope["data"]
        versioned(self.db.venues, d["venue_id"], "v", version_of(envelope), {
            "name": d["name"], "kind": d.get("kind"), **_district(d)})

    def district_registered(self, envelope: dict[str, Any]) -> None:
        d = envelope["data"]
        self.db.districts.update_one({"_id": d["district_id"]}, {"$set": {
            "name": d["name"], "code": d.get("code")}}, upsert=True)

    # -- sessions ------------------------------------------------------------------------
    def session_published(self, envelope: dict[str, Any]) -> None:
        d = envelope["data"]
        v = version_of(envelope)
        versioned(self.db.sessions, d["session_id"], "capacity_v", v,
                  {"capacity": int(d["capacity"])},
                  always={"venue_id": d["venue_id"], "category": d["category"],
                          "audience": d.get("audience")})
        self._when(d["session_id"], v, d["starts_at"])

    def _when(self, session_id: str, version: str, starts_at: str) -> None:
        day = local_day(starts_at)
        versioned(self.db.sessions, session_id, "when_v", version,
                  {"starts_at": starts_at, "term": term_of(day), "week": week_of(day)})

    def session_rescheduled(self, envelope: dict[str, Any]) -> None:
        d = envelope["data"]
        self._when(d["session_id"], version_of(envelope), d["starts_at"])

    def capacity_changed(self, envelope: dict[str, Any]) -> None:
        d = envelope["data"]
        versioned(self.db.sessions, d["session_id"], "capacity_v", version_of(envelope),
                  {"capacity": int(d["capacity"])}, always={"venue_id": d["venue_id"]})

    def session_cancelled(self, envelope: dict[str, Any]) -> None:
        d = envelope["data"]
        self.db.sessions.update_one({"_id": d["session_id"]}, {"$set": {
            "venue_id": d["venue_id"], "cancelled": True}}, upsert=True)

    # -- claims and attendance -----------------------------------------------------------
    # A claim's three events only `$set` (no version), so several of them are one `$set`
    # of their fields merged in the order they occurred, and a batch of them is one
    # `bulk_write` (fold_many).
    CLAIMS = ("booking.claim_confirmed", "booking.claim_cancelled", "booking.claim_waitlisted")

    def claim(self, envelope: dict[str, Any]) -> None:
        claim_id, fields = claim_fields(envelope)
        self.db.claims.update_one({"_id": claim_id}, {"$set": fields}, upsert=True)

    def visit_attended(self, envelope: dict[str, Any]) -> None:
        """Who came: the latest record per claim counts (a venue may correct it)."""
        d = envelope["data"]
        pupils, headcount = _who_came(d)
        values = {"students_booked": int(d["students_booked"]),
                  "students_attended": int(d["students_attended"]),
                  "teachers_attended": int(d.get("teachers_attended") or 0),
                  "no_show": bool(d["no_show"]), "pupil_ids": pupils, "headcount": headcount}
        versioned(self.db.attendance, d["claim_id"], "v", version_of(envelope), values,
                  always={"school_id": d["school_id"], "session_id": d["session_id"],
                          "venue_id": d["venue_id"], "term": d["term"]})

    # -- tutor visits --------------------------------------------------------------------
    def tutor_visit(self, envelope: dict[str, Any]) -> None:
        d = envelope["data"]
        status = envelope["type"].rsplit("_", 1)[1]
        day = date.fromisoformat(str(d["date"])[:10])
        pupils = d.get("pupil_ids")
        versioned(self.db.tutor_visits, d["visit_id"], "rank", VISIT_RANK[status],
                  {"status": status}, always={
                      "school_id": d["school_id"], "venue_id": d["venue_id"],
                      "term": d["term"], "week": week_of(day), "hours": float(d["hours"]),
                      "students": int(d["students"]), "category": TUTOR_VISIT,
                      "pupil_ids": sorted(set(pupils)) if pupils is not None else None})

    def subsidy_paid(self, envelope: dict[str, Any]) -> None:
        """A visit's subsidy reached its tutor (funding: matched on a bank statement).

        Funding pays a visit once, so the fact never changes: every delivery `$set`s the
        same values. It joins the visit by id when a report is computed, in either order."""
        d = envelope["data"]
        self.db.subsidies.update_one({"_id": d["visit_id"]}, {"$set": {
            "school_id": d["school_id"], "district_id": d["district_id"], "term": d["term"],
            "amount_fen": int(d["amount_fen"]), "paid_at": d["paid_at"]}}, upsert=True)

    def admission(self, envelope: dict[str, Any]) -> None:
        """A family or training booking confirmed, cancelled or checked in (admissions.py)."""
        admissions.fold(self.db, envelope)

    # -- surveys -------------------------------------------------------------------------
    def survey_opened(self, envelope: dict[str, Any]) -> None:
        """Guardians and teachers invited to a trip's survey (the highest revision counts)."""
        d = envelope["data"]
        versioned(self.db.surveys, d["survey_id"], "revision", int(d["revision"]), {
            "guardians_invited": int(d["guardians_invited"]),
            "teachers_invited": int(d["teachers_invited"])}, always=_trip_of(d))

    def survey_answered(self, envelope: dict[str, Any]) -> None:
        """One answer per respondent per trip; a changed answer (higher revision) replaces it."""
        d = envelope["data"]
        ratings = {k: int(v) for k, v in (d.get("ratings") or {}).items()
                   if isinstance(v, int) and 1 <= v <= 5}
        versioned(self.db.answers, f"{d['survey_id']}|{d['respondent_id']}", "revision",
                  int(d["revision"]), {"ratings": ratings},
                  always={**_trip_of(d), "respondent": d["respondent_kind"]})


def claim_fields(envelope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(claim id, what a claim event `$set`s): each event sets the facts it carries and its
    own flag, never clearing another's, so a cancel folded before its confirm still wins."""
    d = envelope["data"]
    kind = envelope["type"]
    if kind == "booking.claim_waitlisted":
        return d["claim_id"], {"school_id": d["school_id"], "session_id": d["session_id"],
                               "waitlisted": True}
    if kind == "booking.claim_confirmed":
        return d["claim_id"], {**_trip(d), "confirmed": True, "seats": int(d["seats"])}
    fields = {**_trip(d), "cancelled": True, "cancelled_by": d["cancelled_by"]}
    if d.get("previous_status") == "confirmed":
        fields["confirmed"] = True  # it was confirmed, even if that event is still on its way
    return d["claim_id"], fields


def _trip_of(d: dict[str, Any]) -> dict[str, Any]:
    return {"survey_id": d["survey_id"], "school_id": d["school_id"],
            "claim_id": d.get("claim_id"), "visit_id": d.get("visit_id"),
            "term": d.get("term")}


def _who_came(d: dict[str, Any]) -> tuple[list[str] | None, int]:
    """(distinct pupil ids named, pupils counted by head only) of an attendance record.

    The pupil form names pupils per class (`groups[].pupil_ids`); a class without ids,
    and a record without classes, counts by head."""
    groups = d.get("groups") or []
    if not groups:
        ids = d.get("pupil_ids")
        if ids is not None:
            return sorted(set(ids)), 0
        return None, int(d["students_attended"])
    named: set[str] = set()
    head, any_named = 0, False
    for group in groups:
        if group.get("pupil_ids") is not None:
            any_named = True
            named.update(group["pupil_ids"])
        else:
            head += int(group.get("students_attended") or 0)
    return (sorted(named) if any_named else None), head
