"""The venues service's entrypoints: validate, call the domain, answer.

RPC for the booking service: `get_session`, `get_sessions`, `seats`, `hold`, `release`,
`get_tutor` (answers as in `contracts.venues`); they act for nobody and carry no actor.
Everything else serves the gateway, which passes the caller as a signed `actor`: each
entrypoint verifies it (`self.actors`, Forbidden if missing, forged or expired) before the
domain checks ownership. Creating calls take the caller's `request_key` (`once`).
"""

from __future__ import annotations

import logging
from typing import Any

from nameko.rpc import rpc
from nameko.timer import timer

from services.contracts.venues import (
    SessionCancellation,
    SessionChange,
    SessionDraft,
    TutorChange,
    TutorRegistration,
    Venue,
    VenueChange,
    VenueQuery,
    VenueRegistration,
)
from services.kit.actor import Actors
from services.kit.boundary import dump, load
from services.kit.context import LogContext
from services.kit.errors import validation_error
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.migrations import checked_mapping
from services.kit.mongo import Store
from services.venues.access import require_admin
from services.venues.repository import VenueRepository

log = logging.getLogger("kepu.venues")

Signed = dict[str, Any] | None  # an actor as it travels: kit.actor.sign


class VenuesService(Health):
    name = "venues"
    store = Store(VenueRepository)
    actors = Actors()
    log_context = LogContext()

    # -- venues ----------------------------------------------------------------------------
    @rpc
    def register_venue(self, payload: dict[str, Any], actor: Signed = None,
                       request_key: str | None = None) -> dict[str, Any]:
        """Admins only (the gateway checks too); a retried `request_key` answers the first."""
        who = self.actors(actor)
        data = load(VenueRegistration, payload)
        return dump(Venue, self.store.register_venue(data, who, request_key))

    @rpc
    def list_venues(self, query: dict[str, Any], actor: Signed = None) -> dict[str, Any]:
        self.actors(actor)  # any signed-in caller
        docs, cursor = self.store.list_venues(load(VenueQuery, query or {}))
        return {"items": [dump(Venue, d) for d in docs], "next_cursor": cursor}

    @rpc
    def get_venue(self, venue_id: str) -> dict[str, Any]:
        return dump(Venue, self.store.venue(venue_id))

    @rpc
    def update_venue(self, venue_id: str, payload: dict[str, Any],
                     actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        change = load(VenueChange, payload)
        return dump(Venue, self.store.update_venue(venue_id, change, who))

    # -- tutors ----------------------------------------------------------------------------
    @rpc
    def register_tutor(self, venue_id: str, payload: dict[str, Any], actor: Signed = None,
                       request_key: str | None = None) -> dict[str, Any]:
        who = self.actors(actor)
        data = load(TutorRegistration, payload)
        return self.store.tutors.register(self.store.venue(venue_id), data, who, request_key)

    @rpc
    def update_tutor(self, venue_id: str, tutor_id: str, payload: dict[str, Any],
                     actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.tutors.change(venue_id, tutor_id, load(TutorChange, payload), who)

    @rpc
    def list_tutors(self, venue_id: str, actor: Signed = None, limit: int = 50,
                    cursor: str | None = None) -> dict[str, Any]:
        who = self.actors(actor)
        self.store.venue(venue_id)
        return self.store.tutors.of_venue(venue_id, who, _limit(limit), cursor)

    @rpc
    def get_tutor(self, tutor_id: str, on: str | None = None) -> dict[str, Any]:
        """A tutor, `bookable` on the day `on` (YYYY-MM-DD; default today)."""
        return self.store.tutors.get(tutor_id, on)

    # -- sessions --------------------------------------------------------------------------
    @rpc
    def publish_session(self, venue_id: str, payload: dict[str, Any], actor: Signed = None,
                        request_key: str | None = None) -> dict[str, Any]:
        """One session, or `{series_id, sessions}` when the draft has `repeat`."""
        who = self.actors(actor)
        venue = self.store.venue(venue_id)
        return self.store.sessions.publish(venue, load(SessionDraft, payload), who,
                                           request_key)

    @rpc
    def update_session(self, session_id: str, payload: dict[str, Any],
                       actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        return self.store.sessions.change(session_id, load(SessionChange, payload), who)

    @rpc
    def cancel_session(self, session_id: str, payload: dict[str, Any],
                       actor: Signed = None) -> dict[str, Any]:
        who = self.actors(actor)
        reason = load(SessionCancellation, payload)["reason"]
        return self.store.sessions.cancel(session_id, reason, who)

    @rpc
    def get_session(self, session_id: str) -> dict[str, Any]:
        return self.store.sessions.get(session_id)

    @rpc
    def get_sessions(self, session_ids: list[str]) -> list[dict[str, Any]]:
        return self.store.sessions.get_many(session_ids)

    @rpc
    def catalogue(self, query: dict[str, Any]) -> dict[str, Any]:
        """`GET /v1/sessions`: the raw query arguments, checked here."""
        return self.store.catalogue.search(query or {})

    # -- seats -----------------------------------------------------------------------------
    @rpc
    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int,
             expected_version: int | None = None) -> dict[str, Any]:
        return self.store.holds.hold(session_id, claim_id, school_id, seats, expected_version)

    @rpc
    def release(self, session_id: str, claim_id: str) -> dict[str, Any]:
        return self.store.holds.release(session_id, claim_id)

    @rpc
    def seats(self, session_id: str) -> dict[str, Any]:
        return self.store.holds.seats(session_id)

    # -- districts: names to ids (`kepu migrate districts`, kit.migrations) ----------------
    @rpc
    def district_names(self, actor: Signed = None) -> list[str]:
        require_admin(self.actors(actor), "migrate districts")
        return sorted(self.store.district_names())

    @rpc
    def adopt_district_ids(self, mapping: dict[str, str], actor: Signed = None
                           ) -> dict[str, int]:
        require_admin(self.actors(actor), "migrate districts")
        return self.store.adopt_district_ids(checked_mapping(mapping))

    @subscribe("identity.district_registered")
    def on_district_registered(self, event: dict[str, Any]) -> None:
        self.store.districts.learn(event["data"])

    # -- upkeep ----------------------------------------------------------------------------
    @timer(interval=60)
    def repair_series(self) -> None:
        """Finish series an interrupted publish left half-way (see `series`)."""
        repaired = self.store.series.repair()
        if repaired:
            log.warning("repaired interrupted series publications", extra={"count": repaired})


def _limit(limit: Any) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
        raise validation_error("limit", "must be from 1 to 100")
    return limit
