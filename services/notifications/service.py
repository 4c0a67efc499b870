"""The notifications service's entrypoints: rosters, consent, surveys and the delivery log
over RPC; claim, session, attendance, tutor-visit and identity events; and one timer for
due messages and reminders.

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

from services.contracts.notifications import (
    ConsentAnswer,
    NotificationsQuery,
    SurveyAnswer,
    SurveyListQuery,
)
from services.kit.actor import Actors
from services.kit.boundary import load
from services.kit.context import LogContext
from services.kit.events import subscribe
from services.kit.health import Health
from services.kit.mongo import Store
from services.notifications import (
    accounts,
    channels,
    consent,
    consent_progress,
    delivery_log,
    family_messages,
    rosters,
    survey_answers,
)
from services.notifications.access import require_school
from services.notifications.consent_reminders import ConsentReminders
from services.notifications.delivery import Delivery
from services.notifications.repository import NotificationsRepository
from services.notifications.settings import NotifySettings
from services.notifications.surveys import Surveys
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

    def surveys(self) -> Surveys:
        return Surveys(self.delivery(), self.postbox.secret, self.postbox.settings.survey_days)

    # -- rosters ----------------------------------------------------------------------------
    @rpc
    def put_roster(self, actor: dict[str, Any], school_id: str, label: str,
                   upload: dict[str, Any]) -> dict[str, Any]:
        require_school(self.actors(actor), school_id, "rosters")
        label = self.store.roster_label(school_id, rosters.check_label(label))
        pupils = rosters.parse(upload)
        stored = self.store.replace_roster(rosters.build_document(school_id, label, pupils))
        queued = self.triggers().roster_replaced(school_id, label)
        return {**rosters.view(stored), "notices_queued": queued}

    @rpc
    def get_roster(self, actor: dict[str, Any], school_id: str, label: str) -> dict[str, Any]:
        require_school(self.actors(actor), school_id, "rosters")
        label = self.store.roster_label(school_id, rosters.check_label(label))
        return rosters.view(self.store.roster(rosters.roster_key(school_id, label)))

    @rpc
    def list_rosters(self, actor: dict[str, Any], school_id: str) -> dict[str, Any]:
        require_school(self.actors(actor), school_id, "rosters")
        return {"items": [rosters.summary(doc) for doc in self.store.rosters_of(school_id)],
                "next_cursor": None}

    # booking marks who came against these ids; they are opaque (no name), so any service
    # may ask, as for consent pages no actor is needed
    @rpc
    def class_pupils(self, school_id: str, labels: list[str]) -> dict[str, list[str]]:
        return rosters.class_pupils(self.store, school_id, labels)

    # -- delivery log and consents ----------------------------------------------------------
    @rpc
    def list_notifications(self, actor: dict[str, Any], query: dict[str, Any]
                           ) -> dict[str, Any]:
        return delivery_log.page(self.store, self.actors(actor), load(NotificationsQuery, query))

    @rpc
    def claim_consents(self, actor: dict[str, Any], claim_id: str) -> dict[str, Any]:
        return consent.claim_consents(self.store, self.actors(actor), claim_id)

    @rpc
    def remind_consents(self, actor: dict[str, Any], claim_id: str,
                        request_key: str | None = None) -> dict[str, Any]:
        return ConsentReminders(self.triggers()).remind(self.actors(actor), claim_id,
                                                        request_key)

    @rpc
    def consent_progress(self, actor: dict[str, Any], claim_ids: str) -> dict[str, Any]:
        who = self.actors(actor)
        return consent_progress.progress(self.store, who, consent_progress.claim_ids(claim_ids))

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

    # -- surveys ----------------------------------------------------------------------------
    @rpc
    def survey_page(self, token: str, language: str | None = None) -> dict[str, Any]:
        return survey_answers.guardian_page(self.store, self.postbox.secret, token, language)

    @rpc
    def answer_survey(self, token: str, payload: dict[str, Any],
                      request_key: str | None = None, language: str | None = None
                      ) -> dict[str, Any]:
        return survey_answers.guardian_answer(self.store, self.postbox.secret, token,
                                              load(SurveyAnswer, payload), request_key,
                                              language)

    @rpc
    def list_surveys(self, actor: dict[str, Any], query: dict[str, Any]) -> dict[str, Any]:
        return survey_answers.staff_list(self.store, self.actors(actor),
                                         load(SurveyListQuery, query))

    @rpc
    def teacher_survey(self, actor: dict[str, Any], survey_id: str,
                       language: str | None = None) -> dict[str, Any]:
        return survey_answers.teacher_page(self.store, self.postbox.secret,
                                           self.actors(actor), survey_id, language)

    @rpc
    def answer_teacher_survey(self, actor: dict[str, Any], survey_id: str,
                              payload: dict[str, Any], request_key: str | None = None,
                              language: str | None = None) -> dict[str, Any]:
        return survey_answers.teacher_answer(self.store, self.postbox.secret,
                                             self.actors(actor), survey_id,
                                             load(SurveyAnswer, payload), request_key,
                                             language)

    @subscribe("booking.visit_attended")
    def on_visit_attended(self, event: dict[str, Any]) -> None:
        self.surveys().visit_attended(event["data"], event["event_id"])

    @subscribe("booking.tutor_visit_confirmed")
    def on_tutor_visit_confirmed(self, event: dict[str, Any]) -> None:
        self.surveys().tutor_visit_confirmed(event["data"], event["event_id"])

    # -- identity's links -------------------------------------------------------------------
    @subscribe("identity.invitation_sent")
    def on_invitation_sent(self, event: dict[str, Any]) -> None:
        accounts.deliver(self.delivery(), "invitation", event["data"], event["event_id"])

    @subscribe("identity.password_reset_requested")
    def on_password_reset_requested(self, event: dict[str, Any]) -> None:
        accounts.deliver(self.delivery(), "password_reset", event["data"], event["event_id"])

    @subscribe("admissions.guardian_message")
    def on_guardian_message(self, event: dict[str, Any]) -> None:
        family_messages.deliver(self.delivery(), event["data"], event["event_id"])

    @subscribe("admissions.contact_erased")
    def on_contact_erased(self, event: dict[str, Any]) -> None:
        family_messages.forget(self.store.db.messages, event["data"])

    # -- triggers ---------------------------------------------------------------------------
    # The claim notices need no applied-events ledger: the claim record's `_id` is the claim
    # and each message's `_id` derives from (kind, claim, pupil, guardian, contact), so the
    # one insert_many of a notice is its own ledger — a repeat, a concurrent duplicate or a
    # re-run after a crash stores nothing twice and sends only what it stored itself
    # (docs/notifications.md, "Delivery, retries, idempotency").
    @subscribe("booking.claim_confirmed", ledger=False)
    def on_claim_confirmed(self, event: dict[str, Any]) -> None:
        self.triggers().claim_confirmed(event["data"], event["event_id"])

    @subscribe("booking.claim_cancelled", ledger=False)
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
