"""Batch placement (分期分批): a grade's classes split across sessions in preference order.

The batch, with its planned claims, is written before any hold, under a lease; a process
that dies while placing it leaves a batch whose lease runs out, and `recover` finishes it
(planned claims written if missing, holds keyed by claim id) or, all-or-nothing, undoes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.booking.batches import pack
from services.booking.claims import check_session_open, new_claim
from services.booking.ports import Venues
from services.booking.repository import BookingRepository
from services.booking.seating import Seating
from services.contracts.booking import BatchRequest
from services.kit import clock
from services.kit.actor import Actor
from services.kit.boundary import load
from services.kit.errors import ValidationFailed

log = logging.getLogger("kepu.booking")

BATCH_LEASE_S = 10


def batch_sessions(session_ids: list[str], found: dict[str, dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """The sessions a batch may use, in preference order; any other refuses the batch,
    naming each offending `session_ids.<i>`."""
    errors: dict[str, list[str]] = {}
    sessions = []
    for i, sid in enumerate(session_ids):
        session = found.get(sid)
        field = f"session_ids.{i}"
        if session is None:
            errors[field] = ["no such session"]
            continue
        try:
            check_session_open(session, clock.now(), field)
        except ValidationFailed as exc:
            errors.update(exc.errors)
            continue
        if session["claim_policy"] != "first_come":
            errors[field] = ["batch claims need first-come sessions; claim window "
                             "sessions one by one"]
            continue
        sessions.append(session)
    if errors:
        raise ValidationFailed("some sessions cannot take a batch", errors)
    return sessions


class BatchPlacement:
    def __init__(self, repo: BookingRepository, venues: Venues, seating: Seating,
                 fault: Callable[[str], None]) -> None:
        self.repo = repo
        self.venues = venues
        self.seating = seating
        self.fault = fault

    def create(self, actor: Actor, payload: dict[str, Any],
               request_key: str | None = None) -> dict[str, Any]:
        school_id = actor.org_as("school", "only school staff may claim seats for their school")
        request = load(BatchRequest, payload)
        batch_id, retried = self.repo.request_keys.new_id("batch", "bat", school_id,
                                                           request_key, payload)
        if retried and (existing := self.repo.find_batch(batch_id)) is not None:
            return existing
        school = self.repo.school(school_id)
        found = {s["session_id"]: s for s in self.venues.get_sessions(request["session_ids"])}
        sessions = batch_sessions(request["session_ids"], found)
        batch = self._plan(batch_id, school, sessions, request, actor.name)
        try:
            self.repo.insert_batch(batch)
        except DuplicateKeyError:  # a concurrent repeat of the same request
            return self.repo.batch(batch_id)
        if batch["state"] != "placing" or not batch["plan"]:
            return batch
        # The batch (with its planned claims) is written before any hold; a crash from here
        # on is finished or undone by `recover` once the batch's lease runs out.
        return self.place(batch)

    def _plan(self, batch_id: str, school: dict[str, Any], sessions: list[dict[str, Any]],
              request: dict[str, Any], who: str) -> dict[str, Any]:
        """The batch document: where each class goes, and which fit nowhere."""
        held = self._school_seats(school["school_id"], [s["session_id"] for s in sessions])
        planned, unplaced = pack(request["groups"], sessions, held)
        by_id = {s["session_id"]: s for s in sessions}
        claims = [new_claim(f"{batch_id}-{n}".replace("bat_", "clm_"), school, by_id[sid],
                            groups, status="holding", actor=who, waitlist=request["waitlist"],
                            batch_id=batch_id)
                  for n, (sid, groups) in enumerate(planned.items(), start=1)]
        batch = {"_id": batch_id, "batch_id": batch_id, "school_id": school["school_id"],
                 "mode": request["mode"], "waitlist": request["waitlist"],
                 "state": "placing", "created_at": clock.stamp(),
                 "lease_until": clock.later(BATCH_LEASE_S),
                 "claims": [c["_id"] for c in claims], "plan": claims,
                 "unplaced": [{"label": g["label"], "reason": g["reason"]} for g in unplaced],
                 "groups": request["groups"], "session_ids": request["session_ids"]}
        if request["mode"] == "all_or_nothing" and unplaced:
            batch.update(state="failed", reason="not every class fits the sessions given")
            batch.pop("lease_until")
        return batch

    def _school_seats(self, school_id: str, session_ids: list[str]) -> dict[str, int]:
        held: dict[str, int] = {}
        for sid in session_ids:
            for claim in self.repo.claims_on_session(sid, ("confirmed", "holding")):
                if claim["school_id"] == school_id:
                    held[sid] = held.get(sid, 0) + claim["seats"]
        return held

    def place(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Hold every planned claim, then confirm — or, all-or-nothing, release them all.

        Safe to run again from the start after a crash: planned claims are written if
        missing, and holds are keyed by claim id.
        """
        written = {c["_id"] for c in self.repo.claims_of_batch(batch["_id"])}
        for planned in batch.get("plan", []):
            if planned["_id"] not in written:
                self.repo.insert_new_claim(planned)
        claims = self.repo.claims_of_batch(batch["_id"])
        answers: dict[str, dict[str, Any]] = {}
        for n, claim in enumerate(sorted(claims, key=lambda c: c["_id"])):
            if claim["status"] != "holding":
                continue
            answers[claim["_id"]] = self.venues.hold(claim["session_id"], claim["_id"],
                                                     claim["school_id"], claim["seats"])
            if n == 0:
                self.fault("mid_batch")
        refused = [cid for cid, a in answers.items() if not a["ok"]]
        # Confirmations start only once every hold succeeded, so a refusal (even in a
        # re-run after a crash) means nothing of this batch was confirmed yet.
        if batch["mode"] == "all_or_nothing" and refused:
            for claim in claims:
                self.venues.release(claim["session_id"], claim["_id"])
                self.repo.transition(claim["_id"], ("holding",), "rejected", "system",
                                     "the batch could not be placed whole; nothing was held",
                                     set_={"reject_code": "batch_failed"})
            self.repo.update_batch(batch["_id"], {"state": "failed",
                                                  "reason": "some classes could not be held"})
        else:
            for claim in claims:
                if claim["_id"] in answers:
                    self.seating.settle(claim, answers[claim["_id"]])
            self.repo.update_batch(batch["_id"], {"state": "completed"})
        return self.repo.batch(batch["_id"])

    def recover(self) -> int:
        """Finish or undo batches whose placing process died (their lease ran out)."""
        count = 0
        while True:
            batch = self.repo.take_stale_batch(clock.stamp(), clock.later(BATCH_LEASE_S))
            if batch is None:
                return count
            log.warning("recovering batch %s", batch["_id"])
            self.place(batch)
            count += 1

    def view(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch as the API shows it: each class's session and outcome, in the order sent."""
        claims = {c["_id"]: c for c in self.repo.claims_of_batch(batch["_id"])}
        assignments = []
        for claim in claims.values():
            for group in claim["groups"]:
                assignments.append({"label": group["label"], "session_id": claim["session_id"],
                                    "claim_id": claim["_id"], "status": claim["status"],
                                    "reason": claim.get("reason")})
        for item in batch.get("unplaced", []):
            assignments.append({"label": item["label"], "session_id": None, "claim_id": None,
                                "status": "unplaced", "reason": item["reason"]})
        order = {g["label"]: i for i, g in enumerate(batch["groups"])}
        assignments.sort(key=lambda a: order.get(a["label"], 0))
        return {"batch_id": batch["_id"], "school_id": batch["school_id"],
                "mode": batch["mode"], "status": batch["state"], "reason": batch.get("reason"),
                "assignments": assignments, "created_at": batch["created_at"]}
