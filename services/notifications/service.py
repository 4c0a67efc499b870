"""The notifications service's entrypoints: rosters, consent and the delivery log over RPC,
claim and session events, and one timer for due messages and reminders.

Sending happens inside the handler that stored the messages, concurrently on a green pool;
the timer catches everything else (quiet hours ended, retries, a worker that died).
"""

from __future__ import annotations

import logging
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer

from services.contracts.notifications import ConsentAnswer, NotificationsQuery
from services.kit.actor import Actors
from services.kit.boundary import load
from services.kit.context import LogContext
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.mongo import Store
from services.notifications import channels, consent, delivery_log, rosters
from services.notifications.access import require_school
from services.notifications.delivery import Delivery
from services.notifications.repository import NotificationsRepository
from services.notifications.settings import NotifySettings
from services.notifications.triggers import Triggers

log = logging.getLogger("kepu.notifications")

SETTINGS = NotifySettings.from_env()


class Postbox(DependencyProvider):
    """The channels (SMTP pool, webhook sessions), built once per container."""

    def setup(self) -> None:
        self.settings = SETTINGS
        self.channels = channels.build(self.settings)

    def stop(self) -> None:
        for channel in self.channels.values():
            channel.close()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> Postbox:
        return self

    @property
    def secret(self) -> str:
        return self.container.config["KEPU_SETTINGS"].jwt_secret


class NotificationsService(Health):
    name = "notifications"
    # Its workers mostly wait on SMTP and providers: at 10 the confirmation queue backed up in
    # a claim burst while the database had room (docs/performance.md).
    max_workers = 24
    store = Store(NotificationsRepository)
    postbox = Postbox()
    log_context = LogContext()
    actors = Actors()

    # -- domain objects for this worker ----------------------------------------------------
    def delivery(self) -> Delivery:
        pool = eventlet.GreenPool(self.postbox.settings.concurrency)
        return Delivery(self.store, self.postbox.channels, self.postbox.settings, pool.imap)

    def triggers(self) -> Triggers:
        return Triggers(self.delivery(), self.postbox.secret)

    # -- rosters ----------------------------------------------------------------------------
    @rpc
    def put_roster(self, actor: dict[str, Any], school_id: str, label: str,
                   upload: dict[str, Any]) -> dict[str, Any]:
        require_school(self.actors(actor), school_id, "rosters")
        label = rosters.check_label(label)
        pupils = rosters.parse(upload)
        stored = self.store.replace_roster(rosters.build_document(school_id, label, pupils))
        queued = self.triggers().roster_replaced(school_id, label)
        return {**rosters.view(stored), "notices_queued": queued}

    @rpc
    def get_roster(self, actor: dict[str, Any], school_id: str, label: str) -> dict[str, Any]:
        require_school(self.actors(actor), school_id, "rosters")
        label = rosters.check_label(label)
        return rosters.view(self.store.roster(rosters.roster_key(school_id, label)))

    @rpc
    def list_rosters(self, actor: dict[str, Any], school_id: str) -> dict[str, Any]:
        require_school(self.actors(actor), school_id, "rosters")
        return {"items": [rosters.summary(doc) for doc in self.store.rosters_of(school_id)],
                "next_cursor": None}

    # -- delivery log and consents ----------------------------------------------------------
    @rpc
    def list_notifications(self, actor: dict[str, Any], query: dict[str, Any]
                           ) -> dict[str, Any]:
        return delivery_log.page(self.store, self.actors(actor), load(NotificationsQuery, query))

    @rpc
    def claim_consents(self, actor: dict[str, Any], claim_id: str) -> dict[str, Any]:
        return consent.claim_consents(self.store, self.actors(actor), claim_id)

    # a guardian answers through a signed link (the token), never as a verified actor
    @rpc
    def consent_page(self, token: str, language: str = "zh-CN") -> dict[str, Any]:
        return consent.page(self.store, self.postbox.secret, token, language)

    @rpc
    def answer_consent(self, token: str, payload: dict[str, Any],
                       request_key: str | None = None) -> dict[str, Any]:
        view, recorded = consent.answer(self.store, self.postbox.secret, token,
                                        load(ConsentAnswer, payload), request_key)
        return {**view, "recorded": recorded}

    # -- triggers ---------------------------------------------------------------------------
    @subscribe("booking.claim_confirmed")
    def on_claim_confirmed(self, event: dict[str, Any]) -> None:
        self.triggers().claim_confirmed(event["data"], event["event_id"])

    @subscribe("booking.claim_cancelled")
    def on_claim_cancelled(self, event: dict[str, Any]) -> None:
        self.triggers().claim_cancelled(event["data"], event["event_id"])

    @subscribe("venues.session_cancelled")
    def on_session_cancelled(self, event: dict[str, Any]) -> None:
        self.triggers().session_cancelled(event["data"], event["event_id"])

    @subscribe("venues.session_rescheduled")
    def on_session_rescheduled(self, event: dict[str, Any]) -> None:
        self.triggers().session_rescheduled(event["data"], event["event_id"])

    @timer(interval=SETTINGS.tick_s)
    def tick(self) -> None:
        """Send due messages (quiet hours over, retries, orphans), then due reminders."""
        triggers = self.triggers()
        triggers.delivery.deliver_due()
        triggers.send_reminders()
