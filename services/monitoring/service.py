"""The monitoring service's entrypoints: fold events, answer the district's figures.

Every handler archives its event, one insert keyed by the event id that is also its
ledger (repository.consume); the timer and the reads fold what was archived. Monitoring
publishes no events and writes nothing another service reads. Reads take the gateway's
signed actor, verified first (kit.actor), and scope the figures to it (access.py).
`school_history` is asked by booking's window allocation, service to service, no actor.
Files (CSV, XLSX) travel as {filename, content_type, text|base64}.
"""

from __future__ import annotations

import base64
from typing import Any

from nameko.rpc import rpc
from nameko.timer import timer

import services.contracts  # noqa: F401 - registers every event type the handlers check
from services.contracts.monitoring import DrillDown, ExportQuery, SchoolHistoryRequest
from services.contracts.terms import TERM_PATTERN
from services.kit.actor import Actors
from services.kit.boundary import load
from services.kit.context import LogContext
from services.kit.errors import validation_error
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.mongo import Store
from services.monitoring import exports
from services.monitoring.access import scope_for
from services.monitoring.repository import MonitoringRepository, refresh_seconds
from services.monitoring.term_facts import Filter

ROWS = ("schools", "venues", "trend")
REPORT = ("summary", "categories", "grades", "satisfaction", "priority", "admissions")


def checked(district_id: Any, term: Any) -> tuple[str, str]:
    if not isinstance(district_id, str) or not 1 <= len(district_id) <= 100:
        raise validation_error("district_id", "a district id")
    if not isinstance(term, str) or not TERM_PATTERN.match(term):
        raise validation_error("term", "a term like 2026-autumn or 2027-spring")
    return district_id, term


def archived(event_type: str) -> Any:
    """A handler without kit's applied-events ledger: the archive insert, keyed by the
    event id, is the handler's only write and its ledger (a repeat is a duplicate key)."""
    return subscribe(event_type, ledger=False)


class MonitoringService(Health):
    name = "monitoring"
    store = Store(MonitoringRepository)
    log_context = LogContext()
    actors = Actors()

    # -- the projection: every event is archived, to be folded ----------------------------
    @archived("booking.school_registered")
    def on_school_registered(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("venues.venue_registered")
    def on_venue_registered(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("venues.venue_updated")
    def on_venue_updated(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("venues.session_published")
    def on_session_published(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("venues.session_cancelled")
    def on_session_cancelled(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("venues.session_rescheduled")
    def on_session_rescheduled(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("venues.capacity_changed")
    def on_capacity_changed(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("booking.claim_confirmed")
    def on_claim_confirmed(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("booking.claim_cancelled")
    def on_claim_cancelled(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("booking.claim_waitlisted")
    def on_claim_waitlisted(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("booking.visit_attended")
    def on_visit_attended(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("booking.tutor_visit_booked")
    def on_tutor_visit_booked(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("booking.tutor_visit_delivered")
    def on_tutor_visit_delivered(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("booking.tutor_visit_confirmed")
    def on_tutor_visit_confirmed(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("booking.tutor_visit_cancelled")
    def on_tutor_visit_cancelled(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("identity.district_registered")
    def on_district_registered(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("notifications.survey_opened")
    def on_survey_opened(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("notifications.survey_answered")
    def on_survey_answered(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("notifications.survey_changed")
    def on_survey_changed(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("funding.subsidy_paid")
    def on_subsidy_paid(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("admissions.booking_confirmed")
    def on_booking_confirmed(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("admissions.booking_cancelled")
    def on_booking_cancelled(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    @archived("admissions.checked_in")
    def on_checked_in(self, event: dict[str, Any]) -> None:
        self.store.consume(event)

    # -- reads ---------------------------------------------------------------------------
    def _report(self, actor: dict[str, Any], district_id: Any, term: Any,
                query: dict[str, Any] | None, schema: Any = DrillDown
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        district_id, term = checked(district_id, term)
        loaded = load(schema, query or {})
        scope = scope_for(self.actors(actor), district_id)
        return self.store.term_report(district_id, term, scope, Filter.of(loaded)), loaded

    @rpc
    def term_report(self, actor: dict[str, Any], district_id: str, term: str,
                    query: dict[str, Any] | None = None) -> dict[str, Any]:
        """The summary, category mix, grades, satisfaction and priority share."""
        report, _ = self._report(actor, district_id, term, query)
        return {k: report[k] for k in ("district_id", "term", "scope", "filter",
                                       "computed_at", *REPORT)}

    @rpc
    def term_rows(self, actor: dict[str, Any], district_id: str, term: str, view: str,
                  query: dict[str, Any] | None = None) -> dict[str, Any]:
        """One drill-down table (schools, venues or trend) with its totals."""
        if view not in ROWS:
            raise validation_error("view", f"one of {', '.join(ROWS)}")
        report, _ = self._report(actor, district_id, term, query)
        return {"district_id": report["district_id"], "term": report["term"],
                "items": report[view], "totals": exports.totals(report[view], view)}

    @rpc
    def report_file(self, actor: dict[str, Any], district_id: str, term: str, fmt: str,
                    query: dict[str, Any] | None = None) -> dict[str, Any]:
        """The CSV of one view, or the workbook of every view and the definitions."""
        report, loaded = self._report(actor, district_id, term, query, ExportQuery)
        if fmt == "csv":
            return exports.csv_file(report, loaded["view"])
        name, content_type, data = exports.xlsx_file(report)
        return {"filename": name, "content_type": content_type,
                "base64": base64.b64encode(data).decode()}

    @timer(interval=refresh_seconds())
    def refresh_reports(self) -> None:
        """Fold what was archived, then recompute the reports read lately whose facts
        changed, before anyone asks."""
        self.store.refresh()

    # -- allocation and operations ------------------------------------------------------
    @rpc
    def school_history(self, school_ids: list[str], term: str) -> dict[str, dict[str, int]]:
        """{school_id: {confirmed_visits, no_shows}}: what window allocation weighs."""
        request = load(SchoolHistoryRequest, {"school_ids": school_ids, "term": term})
        return self.store.school_history(request["school_ids"], request["term"])

    @rpc
    def counts(self, term: str | None = None) -> dict[str, Any]:
        """The read model's counts (`kepu monitoring check`)."""
        return self.store.counts(term)
