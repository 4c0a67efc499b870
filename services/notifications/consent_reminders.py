"""Reminding the guardians who have not answered a claim's consent request (the school asks).

At most once per claim every `REMIND_EVERY` (12 hours): parents asked twice a day are
asked enough. The claim record carries the last reminder (`consent_reminder`: its id,
when, when the next may go, and what it sent); taking that slot is one conditional write,
so two clicks at once send one reminder and the second is told when it may ask again
(429 `consent-reminder-too-soon`).

The messages are the `consent_reminder` notice with a fresh consent link, to every
guardian of each pupil with no answer yet, scoped by the reminder's id: composing them
again stores nothing new (the dedup key). Quiet hours hold SMS and WeChat until the
morning, as for any notice (messages.new_message). A retry with the same Idempotency-Key
answers the first reminder and (re)stores its messages, so a crash between taking the slot
and storing them is mended by retrying.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.kit import clock
from services.kit.actor import Actor
from services.kit.errors import Conflict, NotFound, TooManyRequests
from services.notifications import consent
from services.notifications.access import require_school
from services.notifications.guardians import Recipient, recipients
from services.notifications.notices import compose
from services.notifications.triggers import Triggers

REMIND_EVERY = timedelta(hours=12)
KIND = "consent_reminder"


def unanswered(claim: dict[str, Any], rosters: list[dict[str, Any]],
               answers: dict[str, dict[str, Any]]) -> list[Recipient]:
    """Every (pupil, guardian) of the claim's classes whose pupil has no answer yet."""
    return [r for r in recipients(rosters, claim["labels"])
            if r.pupil["pupil_id"] not in answers]


def remindable(claim: dict[str, Any] | None, actor: Actor, claim_id: str, now: str
               ) -> dict[str, Any]:
    """The claim, if its school may remind its parents now; else the named refusal."""
    if claim is None:
        raise NotFound("no confirmed claim with this id is known to notifications",
                       code="claim-not-found")
    require_school(actor, claim["school_id"], "consents")
    if claim["status"] != "confirmed":
        raise Conflict("this claim is not confirmed; there is nothing to consent to",
                       code="claim-cancelled")
    if claim["trip"]["starts_at"] <= now:
        raise Conflict("this trip has already started", code="trip-started")
    return claim


def too_soon(slot: dict[str, Any], now: str) -> TooManyRequests:
    wait = clock.parse(slot["next_at"]) - clock.parse(now)
    return TooManyRequests(
        "the guardians of this claim were reminded less than 12 hours ago; try again after "
        f"{slot['next_at']}", {"claim_id": [f"next reminder possible at {slot['next_at']}"]},
        code="consent-reminder-too-soon", retry_after=int(wait.total_seconds()) + 1)


class ConsentReminders:
    def __init__(self, triggers: Triggers) -> None:
        self.triggers = triggers
        self.repo = triggers.repo

    def compose(self, claim: dict[str, Any], reminder_id: str) -> list[dict[str, Any]]:
        rosters = self.repo.rosters_of(claim["school_id"], claim["labels"])
        answers = consent.current(self.repo.consent_records(claim["_id"]))
        return compose(claim, KIND, unanswered(claim, rosters, answers),
                       settings=self.triggers.settings, secret=self.triggers.secret,
                       scope=reminder_id)

    def remind(self, actor: Actor, claim_id: str, request_key: str | None = None
               ) -> dict[str, Any]:
        """Send the consent request again to those who have not answered; the reminder."""
        now = clock.stamp()
        claim = remindable(self.repo.claim(claim_id), actor, claim_id, now)
        reminder_id, retried = self.repo.request_keys.new_id(
            "consent_reminder", "rmd", claim_id, request_key, claim_id)
        earlier = claim.get("consent_reminder") or {}
        if retried and earlier.get("reminder_id") == reminder_id:
            self.triggers.delivery.store_and_send(self.compose(claim, reminder_id))
            return _view(claim_id, earlier)
        docs = self.compose(claim, reminder_id)
        if not docs:
            raise Conflict("every pupil's guardians have answered (or no roster is uploaded "
                           "for the claim's classes): there is no one to remind",
                           code="consent-nothing-to-remind")
        slot = {"reminder_id": reminder_id, "reminded_at": now,
                "next_at": clock.stamp(clock.parse(now) + REMIND_EVERY),
                "pupils": len({d["pupil_id"] for d in docs}), "messages": len(docs),
                "deferred": sum(1 for d in docs if d["status"] == "deferred"),
                "suppressed": sum(1 for d in docs if d["status"] == "suppressed")}
        if self.repo.take_consent_reminder(claim_id, slot, now) is None:
            current = self.repo.claim(claim_id)
            remindable(current, actor, claim_id, now)  # cancelled meanwhile: that refusal
            assert current is not None
            held = current.get("consent_reminder") or {}
            if held.get("reminder_id") == reminder_id:  # our own retry won the slot
                return _view(claim_id, held)
            raise too_soon(held, now)
        self.triggers.delivery.store_and_send(docs)
        return _view(claim_id, slot)


def _view(claim_id: str, slot: dict[str, Any]) -> dict[str, Any]:
    return {"claim_id": claim_id, **{k: slot[k] for k in (
        "reminder_id", "reminded_at", "next_at", "pupils", "messages", "deferred",
        "suppressed")}}
