"""Getting stored messages out: send, record each attempt, retry with backoff, defer, give up.

A message is sent only under a lease (`lease_until`), so two workers — the handler that
stored it and the timer sweeping due messages, or two replicas — never send it at once.
One attempt:
- quiet hours for its channel now → `deferred` until they end (no attempt spent);
- sent → `sent` with the provider's id;
- failed, permanently or on the last attempt → `failed` with the error (masked);
- failed otherwise → stays `queued`, due again after the next backoff delay.
The timer (`deliver_due`) picks up deferred and retry-due messages, and any whose lease ran
out because the worker sending them died.

A message whose text carries a secret link (an invitation, a password reset) keeps that
text only until it is settled: sent, failed or suppressed, its `text` becomes the
redacted copy. One whose link expired while it waited is suppressed, never sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.kit import clock
from services.kit.logs import mask_text
from services.notifications.channels import Channel, Outgoing, SendFailed
from services.notifications.masking import scrub
from services.notifications.repository import NotificationsRepository
from services.notifications.settings import NotifySettings

log = logging.getLogger("kepu.notifications.delivery")

_LINK = re.compile(r"https?://\S+")


@dataclass(frozen=True)
class Outcome:
    """What one attempt did to a message: `status` for counting, `fields` to store."""

    message_id: str
    status: str  # sent, retrying, failed, deferred
    fields: dict[str, Any]
    attempt: int | None = None
    trial: dict[str, Any] | None = None


Mapper = Callable[[Callable[[dict[str, Any]], Outcome], Iterable[dict[str, Any]]],
                  Iterable[Outcome]]


def _masked(error: str, doc: dict[str, Any]) -> str:
    """A provider's error as stored and listed: no contact in it, however the provider
    echoed it (the recipient itself, or any phone number or address)."""
    error = scrub(error, doc.get("recipient"), doc.get("recipient_masked"))
    return _LINK.sub("<link>", mask_text(error))[:500]  # a provider may echo the text's link


def _settled(doc: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a final outcome: a secret link's text replaced by its redacted copy."""
    if doc.get("secret"):
        return {**fields, "text": doc.get("text_redacted") or ""}
    return fields


class Delivery:
    def __init__(self, repo: NotificationsRepository, channels: dict[str, Channel],
                 settings: NotifySettings, mapper: Mapper = map) -> None:
        self.repo = repo
        self.channels = channels
        self.settings = settings
        self.mapper = mapper  # the service passes a green pool's imap: sends run concurrently

    def lease_until(self) -> str:
        return clock.later(self.settings.lease_s)

    def enqueue(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store new messages; those queued now are leased to this caller to send at once."""
        until = self.lease_until()
        for doc in docs:
            if doc["status"] == "queued":
                doc["lease_until"] = until
        return self.repo.add_messages(docs)

    def store_and_send(self, docs: list[dict[str, Any]]) -> dict[str, int]:
        """Store new messages (repeats skipped), send those queued now; counts of what became
        of the new ones (sent, retrying, failed, deferred, suppressed)."""
        stored = self.enqueue(docs)
        counts = self.send_all(stored)
        for doc in stored:
            if doc["status"] != "queued":
                counts[doc["status"]] = counts.get(doc["status"], 0) + 1
        return counts

    def send_all(self, docs: Iterable[dict[str, Any]]) -> dict[str, int]:
        """Attempt every queued message in `docs` (leased to the caller); outcome counts.

        Sends stream through the mapper (the green pool keeps `concurrency` in flight and
        runs on while a batch is written: sending never waits to fill a batch); outcomes
        are recorded as they come, one bulk write per `concurrency` of them (a fan-out's
        writes dominated its cost when made one by one). A worker that dies mid-way leaves
        the unrecorded messages leased and queued: they are sent again after the lease, so
        at most the batch being written and the sends behind it (two batches) can reach a
        guardian twice.
        """
        counts: dict[str, int] = {}
        queued = [d for d in docs if d["status"] == "queued"]
        size = max(1, self.settings.concurrency)
        batch: list[Outcome] = []
        for outcome in self.mapper(self.attempt, queued):
            batch.append(outcome)
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
            if len(batch) >= size:
                self.repo.settle_many(batch)
                batch = []
        self.repo.settle_many(batch)
        return counts

    def deliver_due(self, limit: int = 200) -> dict[str, int]:
        """Send what is due now: deferred messages whose quiet hours ended, retries, orphans."""
        now = clock.stamp()
        taken = self.repo.lease_due(now, self.lease_until(), limit)
        return self.send_all(taken)

    def attempt(self, doc: dict[str, Any]) -> Outcome:
        """One try of one leased message: what became of it (recorded by the caller)."""
        now = clock.now()
        channel_name = doc["channel"]
        if doc.get("link_expires_at") and clock.stamp(now) >= doc["link_expires_at"]:
            return Outcome(doc["_id"], "suppressed", _settled(doc, {
                "status": "suppressed", "due_at": None,
                "error": "the link expired before it could be delivered"}))
        hold = self.settings.quiet.hold(channel_name, now) if doc.get("quiet", True) \
            else None
        if hold is not None:
            return Outcome(doc["_id"], "deferred", {"status": "deferred",
                                                    "due_at": clock.stamp(hold)})
        attempt = int(doc.get("attempts") or 0) + 1
        outgoing = Outgoing(doc["_id"], channel_name, doc["recipient"], doc["subject"],
                            doc["text"], doc.get("language") or "zh-CN")
        try:
            provider_id = self.channels[channel_name].send(outgoing)
        except SendFailed as exc:
            return self._failed(doc, attempt, _masked(exc.error, doc), exc.permanent)
        except Exception as exc:  # noqa: BLE001 - a broken adapter must not lose the message
            log.exception("channel %s raised unexpectedly", channel_name)
            return self._failed(doc, attempt, _masked(f"{type(exc).__name__}: {exc}", doc),
                                False)
        stamp = clock.stamp()
        return Outcome(doc["_id"], "sent", _settled(doc, {
                           "status": "sent", "attempts": attempt, "provider_id": provider_id,
                           "sent_at": stamp, "error": None, "due_at": None}),
                       attempt, {"at": stamp, "ok": True, "provider_id": provider_id})

    def _failed(self, doc: dict[str, Any], attempt: int, error: str, permanent: bool
                ) -> Outcome:
        stamp = clock.stamp()
        trial = {"at": stamp, "ok": False, "error": error}
        if permanent or attempt >= self.settings.max_attempts:
            log.warning("message %s failed after %d attempt(s): %s", doc["_id"], attempt, error)
            return Outcome(doc["_id"], "failed", _settled(doc, {
                               "status": "failed", "attempts": attempt, "error": error,
                               "due_at": None}),
                           attempt, trial)
        delay_ms = self.settings.retry_delays_ms[attempt - 1]
        due = clock.stamp(clock.now() + timedelta(milliseconds=delay_ms))
        return Outcome(doc["_id"], "retrying", {"status": "queued", "attempts": attempt,
                                                "error": error, "due_at": due},
                       attempt, trial)
