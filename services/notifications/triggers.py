"""What each trigger tells parents: claim confirmed, claim or session cancelled, session
rescheduled, the reminder before the trip, and a roster uploaded after the claim.

This service keeps its own record of each confirmed claim (`claims`): the classes, the
school's name and the trip, so that a session-level event or the reminder timer knows who
is on the trip. When a venue cancels a session both `venues.session_cancelled` and, per
claim, `booking.claim_cancelled` arrive; the cancellation notice's dedup key has no event
in it, so parents get one notice whichever comes first. Every step is safe to repeat.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from services.kit import clock
from services.notifications.delivery import Delivery
from services.notifications.guardians import labels_of, recipients
from services.notifications.notices import compose

log = logging.getLogger("kepu.notifications.triggers")

STALE_ON_CANCEL = ("confirmed", "rescheduled", "reminder", "consent_reminder")


def reminder_fields(trip: dict[str, Any], hours: int, now: str) -> dict[str, Any]:
    """When the reminder is due; `covered` if a notice is going out inside that window anyway."""
    remind_at = clock.stamp(clock.parse(trip["starts_at"]) - timedelta(hours=hours))
    return {"remind_at": remind_at, "reminder": "pending" if now < remind_at else "covered"}


class Triggers:
    def __init__(self, delivery: Delivery, secret: str) -> None:
        self.delivery = delivery
        self.repo = delivery.repo
        self.settings = delivery.settings
        self.secret = secret

    # -- the notice of one claim -------------------------------------------------------------
    def compose(self, claim: dict[str, Any], kind: str, scope: str = "",
                event_id: str | None = None, extra: dict[str, Any] | None = None,
                labels: list[str] | None = None) -> list[dict[str, Any]]:
        labels = claim["labels"] if labels is None else labels
        rosters = self.repo.rosters_of(claim["school_id"], labels)
        return compose(claim, kind, list(recipients(rosters, labels)), settings=self.settings,
                       secret=self.secret, scope=scope, event_id=event_id, extra=extra)

    def notify(self, claim: dict[str, Any], kind: str, scope: str = "",
               event_id: str | None = None, extra: dict[str, Any] | None = None
               ) -> dict[str, int]:
        """Store the notice's messages (repeats skipped) and send the new ones now."""
        stored = self.delivery.enqueue(self.compose(claim, kind, scope, event_id, extra))
        counts = self.delivery.send_all(stored)
        for doc in stored:
            if doc["status"] != "queued":
                counts[doc["status"]] = counts.get(doc["status"], 0) + 1
        log.info("%s notice for claim %s: %d new message(s) %s", kind, claim["_id"],
                 len(stored), counts)
        return counts

    # -- triggers ----------------------------------------------------------------------------
    def record(self, data: dict[str, Any], status: str) -> dict[str, Any]:
        now = clock.stamp()
        return {
            "_id": data["claim_id"], "school_id": data["school_id"],
            "school_name": data.get("school_name") or "", "session_id": data["session_id"],
            "groups": data["groups"], "labels": labels_of(data["groups"]),
            "trip": data["trip"], "status": status, "created_at": now, "updated_at": now,
            **(reminder_fields(data["trip"], self.settings.reminder_hours, now)
               if status == "confirmed" else {"reminder": "off", "remind_at": None}),
        }

    def claim_confirmed(self, data: dict[str, Any], event_id: str) -> dict[str, int]:
        claim = self.repo.add_claim(self.record(data, "confirmed"))
        if claim is None:
            claim = self.repo.claim(data["claim_id"])
            if claim is None or claim["status"] != "confirmed":
                log.info("claim %s is no longer confirmed; no confirmation sent",
                         data["claim_id"])
                return {}
        return self.notify(claim, "confirmed", event_id=event_id)

    def claim_cancelled(self, data: dict[str, Any], event_id: str) -> dict[str, int]:
        changes = {"status": "cancelled", "cancelled_by": data["cancelled_by"],
                   "reason": data["reason"], "trip": data["trip"], "reminder": "off"}
        claim = self.repo.claim(data["claim_id"])
        if claim is None:
            if data["previous_status"] != "confirmed":
                return {}  # parents were never told of this claim
            self.repo.add_claim({**self.record(data, "cancelled"), **changes})
            claim = self.repo.claim(data["claim_id"])
        elif claim["status"] == "confirmed":
            claim = self.repo.update_claim(claim["_id"], changes,
                                           expect={"status": "confirmed"}) \
                or self.repo.claim(data["claim_id"])
        assert claim is not None
        return self.cancel_notice(claim, event_id, data["reason"])

    def cancel_notice(self, claim: dict[str, Any], event_id: str, reason: str
                      ) -> dict[str, int]:
        """Withdraw the claim's news still waiting (e.g. deferred by quiet hours), then tell
        every guardian it is cancelled."""
        self.repo.withdraw(claim["_id"], STALE_ON_CANCEL,
                           "withdrawn: the claim was cancelled before this went out")
        return self.notify(claim, "cancelled", event_id=event_id,
                           extra={"reason": claim.get("reason") or reason})

    def session_cancelled(self, data: dict[str, Any], event_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        changes = {"status": "cancelled", "cancelled_by": "venue", "reason": data["reason"],
                   "reminder": "off"}
        for claim in self.repo.claims_on_session(data["session_id"], "confirmed"):
            self.repo.update_claim(claim["_id"], changes, expect={"status": "confirmed"})
        for claim in self.repo.claims_on_session(data["session_id"], "cancelled"):
            if claim.get("cancelled_by") != "venue":
                continue  # cancelled earlier by the school: its parents were told then
            result = self.cancel_notice(claim, event_id, data["reason"])
            for key, value in result.items():
                counts[key] = counts.get(key, 0) + value
        return counts

    def session_rescheduled(self, data: dict[str, Any], event_id: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        previous = {"starts_at": data["previous_starts_at"], "ends_at": data["previous_ends_at"]}
        now = clock.stamp()
        for claim in self.repo.claims_on_session(data["session_id"], "confirmed"):
            trip = {**claim["trip"], "starts_at": data["starts_at"], "ends_at": data["ends_at"],
                    "timezone": data["timezone"]}
            fields: dict[str, Any] = {"trip": trip}
            if claim["trip"]["starts_at"] != data["starts_at"]:
                fields.update(reminder_fields(trip, self.settings.reminder_hours, now))
            updated = self.repo.update_claim(claim["_id"], fields,
                                             expect={"status": "confirmed"})
            if updated is None:
                continue
            result = self.notify(updated, "rescheduled", scope=event_id, event_id=event_id,
                                 extra={"previous": previous})
            for key, value in result.items():
                counts[key] = counts.get(key, 0) + value
        return counts

    def send_reminders(self, limit: int = 50) -> int:
        """Remind the guardians of confirmed claims whose trip starts within the window."""
        now = clock.stamp()
        reminded = 0
        for claim in self.repo.reminders_due(now, limit):
            starts_at = claim["trip"]["starts_at"]
            if claim["status"] != "confirmed" or starts_at <= now:
                self.repo.update_claim(claim["_id"], {"reminder": "missed"},
                                       expect={"remind_at": claim["remind_at"]})
                continue
            self.notify(claim, "reminder", scope=starts_at)
            self.repo.update_claim(claim["_id"], {"reminder": "sent",
                                                  "reminded_for": starts_at},
                                   expect={"remind_at": claim["remind_at"]})
            reminded += 1
        return reminded

    def roster_replaced(self, school_id: str, label: str) -> int:
        """Guardians added to a class already on a trip hear about it too.

        Their messages are stored queued and unleased: the delivery timer sends them, so
        the roster upload answers at once. Guardians already told are skipped by dedup key.
        """
        stored = 0
        for claim in self.repo.active_claims_with_label(school_id, label, clock.stamp()):
            docs = self.compose(claim, "confirmed", labels=[label])
            stored += len(self.repo.add_messages(docs))
        return stored
