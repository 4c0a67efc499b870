"""The booking desk: claims, batches, allocation, waitlists and cancellations, end to end.

It talks to the venues service through `venues` (the nameko RPC proxy in the service; a
fake in unit tests) and to MongoDB through the repository. Seats are only ever held for a
claim that is already recorded (status `holding`), so a crash between the hold and the
answer leaves a claim the recovery sweep can finish: it asks venues for the same hold
again (holds are keyed by claim id, so the repeat changes nothing) and completes the
claim, or releases the seats. That is how no seat is orphaned.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, MutableMapping
from typing import Any, Protocol

from pymongo.errors import DuplicateKeyError

from services.booking import allocation
from services.booking.batches import pack
from services.booking.claims import (
    ACTIVE,
    OPEN_FOR_CANCEL,
    check_groups,
    check_session_open,
    new_claim,
    seats_of,
    wait_key,
)
from services.booking.repository import BookingRepository
from services.contracts.booking import (
    AttendanceRequest,
    BatchRequest,
    CancelRequest,
    ClaimRequest,
)
from services.kit import clock
from services.kit.boundary import load
from services.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.kit.health import INSTANCE
from services.kit.ids import new_id
from services.kit.outbox import event

log = logging.getLogger("kepu.booking")

HOLDING_GRACE_S = 10  # a claim still `holding` after this is finished by the sweep
BATCH_LEASE_S = 10
ALLOCATION_LEASE_S = 30


class Venues(Protocol):
    def get_session(self, session_id: str) -> dict[str, Any]: ...
    def get_sessions(self, session_ids: list[str]) -> list[dict[str, Any]]: ...
    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int) -> dict: ...
    def release(self, session_id: str, claim_id: str) -> dict[str, Any]: ...


def _fault(point: str) -> None:
    """Crash drills: KEPU_BOOKING_FAULT=<point> kills this process there, as a power cut would."""
    if os.environ.get("KEPU_BOOKING_FAULT") == point:
        log.warning("fault drill: killing booking at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)


class _Forgetful(dict):
    """No caching (the default, e.g. in unit tests)."""

    def __setitem__(self, key: str, value: Any) -> None:
        pass


def school_of(actor: dict[str, Any] | None) -> str:
    if not actor or actor.get("role") != "school" or not actor.get("org"):
        raise Forbidden("only school staff may claim seats for their school")
    return actor["org"]


def actor_name(actor: dict[str, Any] | None) -> str:
    if not actor:
        return "system"
    return f"{actor['role']}:{actor.get('sub')}"


class BookingDesk:
    def __init__(self, repo: BookingRepository, venues: Venues,
                 fault: Callable[[str], None] = _fault,
                 recent: MutableMapping[str, Any] | None = None) -> None:
        self.repo = repo
        self.venues = venues
        self.fault = fault
        self.recent = recent if recent is not None else _Forgetful()

    # -- reading sessions and schools -------------------------------------------------------
    def session(self, session_id: str, field: str = "session_id",
                fresh: bool = True) -> dict[str, Any]:
        """A session as the venues service describes it.

        `fresh=False` accepts one read in the last second (a burst of claims on a popular
        session asks once, not per claim): used only to check a claim before its hold, and
        the hold itself is decided on the venues service's current state.
        """
        key = f"session:{session_id}"
        if not fresh and key in self.recent:
            return self.recent[key]
        try:
            session = self.venues.get_session(session_id)
        except NotFound:
            raise ValidationFailed(f"no session {session_id}",
                                   {field: ["no such session"]}) from None
        self.recent[key] = session
        return session

    def school(self, school_id: str) -> dict[str, Any]:
        key = f"school:{school_id}"
        school = self.recent.get(key)
        if school is None:
            school = self.repo.school(school_id)
            self.recent[key] = school
        return school

    # -- claims -----------------------------------------------------------------------------
    def create_claim(self, actor: dict[str, Any], payload: dict[str, Any],
                     request_key: str | None = None) -> dict[str, Any]:
        school_id = school_of(actor)
        request = load(ClaimRequest, payload)
        claim_id = new_id("clm")
        if request_key:
            # The first request with this key binds it to a claim id; a repeat (a retry
            # after a lost answer, or after this process died mid-way) continues that
            # claim instead of starting another.
            bound = self.repo.remember_request(school_id, request_key, claim_id)
            if bound != claim_id:
                if (existing := self.repo.find_claim(bound)) is not None:
                    return self.finish_interrupted(existing)
                claim_id = bound
        school = self.school(school_id)
        session = self.session(request["session_id"], fresh=False)
        check_session_open(session, clock.now())
        check_groups(session, request["groups"])
        who = actor_name(actor)
        if session["claim_policy"] == "window":
            now = clock.stamp()
            if now < session["window_closes_at"]:
                doc = new_claim(claim_id, school, session, request["groups"], status="pending",
                                actor=who, waitlist=request["waitlist"])
                self.repo.expect_allocation(session["session_id"], session["window_closes_at"])
                return self._insert_new(doc)
            done = self.repo.allocation(session["session_id"])
            if done is not None and done["state"] not in ("completed", "cancelled"):
                # The window closed and allocation is under way: join the line behind it.
                doc = new_claim(claim_id, school, session, request["groups"],
                                status="waitlisted", actor=who, waitlist=True,
                                reason="the claim window has closed; waiting for seats")
                doc["wait_key"] = wait_key()
                waitlisted = event("booking.claim_waitlisted", {
                    "claim_id": claim_id, "school_id": school_id,
                    "session_id": session["session_id"], "position": None})
                return self._insert_new(doc, [waitlisted])
        doc = new_claim(claim_id, school, session, request["groups"], status="holding",
                        actor=who, waitlist=request["waitlist"])
        inserted = self._insert_new(doc)
        if inserted is not doc:
            return inserted  # a concurrent repeat of the same request got there first
        answer = self.venues.hold(session["session_id"], claim_id, school_id, doc["seats"])
        return self.finish_hold(doc, answer, session)

    def _insert_new(self, doc: dict[str, Any],
                    events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Insert a new claim; if the same id exists already, answer with that one."""
        doc.setdefault("served_by", INSTANCE)  # which replica took it (operations, scale-out)
        try:
            self.repo.insert_claims([doc], {doc["_id"]: events} if events else None)
        except DuplicateKeyError:
            return self.repo.claim(doc["_id"])
        return doc

    def finish_interrupted(self, claim: dict[str, Any]) -> dict[str, Any]:
        """A claim caught mid-way (`holding`) gets its answer now: ask for the same hold again."""
        if claim["status"] != "holding" or claim.get("batch_id"):
            return claim
        answer = self.venues.hold(claim["session_id"], claim["_id"], claim["school_id"],
                                  claim["seats"])
        return self.finish_hold(claim, answer)

    def finish_hold(self, claim: dict[str, Any], answer: dict[str, Any],
                    session: dict[str, Any] | None = None) -> dict[str, Any]:
        """Complete a `holding` claim from the venues service's answer to its hold."""
        if answer["ok"]:
            done = self.repo.transition(claim["_id"], ("holding",), "confirmed", "system",
                                        events=(self._confirmed(claim),),
                                        unset=("wait_key",))
            return done or self.repo.claim(claim["_id"])
        reason = answer["reason"]
        if reason == "full" and claim.get("waitlist", True):
            key = claim.get("wait_key") or wait_key()
            done = self.repo.transition(
                claim["_id"], ("holding",), "waitlisted", "system", "no seats left; waitlisted",
                set_={"wait_key": key},
                events=(event("booking.claim_waitlisted", {
                    "claim_id": claim["_id"], "school_id": claim["school_id"],
                    "session_id": claim["session_id"], "position": None}),))
            return done or self.repo.claim(claim["_id"])
        text = {"full": "no seats left (no waitlist asked for)",
                "over_school_limit": "over the session's limit of seats per school",
                "closed": "the session has started", "cancelled": "the session was cancelled",
                "not_found": "the session no longer exists"}.get(reason, reason)
        done = self.repo.transition(claim["_id"], ("holding",), "rejected", "system", text,
                                    set_={"reject_code": reason}, unset=("wait_key",))
        return done or self.repo.claim(claim["_id"])

    def _confirmed(self, claim: dict[str, Any]) -> dict[str, Any]:
        return event("booking.claim_confirmed", {
            "claim_id": claim["_id"], "school_id": claim["school_id"],
            "school_name": claim["school_name"], "session_id": claim["session_id"],
            "groups": claim["groups"], "seats": claim["seats"], "trip": claim["trip"]})

    def _cancelled(self, claim: dict[str, Any], by: str, reason: str) -> dict[str, Any]:
        return event("booking.claim_cancelled", {
            "claim_id": claim["_id"], "school_id": claim["school_id"],
            "session_id": claim["session_id"], "previous_status": claim["status"],
            "cancelled_by": by, "reason": reason, "groups": claim["groups"],
            "trip": claim["trip"]})

    def cancel_claim(self, actor: dict[str, Any], claim_id: str,
                     payload: dict[str, Any] | None = None) -> dict[str, Any]:
        request = load(CancelRequest, payload or {})
        school_id = school_of(actor)
        claim = self.repo.claim(claim_id)
        if claim["school_id"] != school_id:
            raise NotFound(f"claim {claim_id} not found", code="claim-not-found")
        if claim["status"] not in OPEN_FOR_CANCEL:
            raise Conflict(f"a {claim['status']} claim cannot be cancelled",
                           code="claim-not-cancellable")
        starts = clock.parse(claim["trip"]["starts_at"])
        cutoff_h = claim.get("cancel_cutoff_hours", 24)
        left_s = (starts - clock.now()).total_seconds()
        if claim["status"] == "confirmed" and left_s < cutoff_h * 3600:
            raise Conflict(f"cancellation closed {cutoff_h} hours before the start; "
                           "contact the venue", code="cancel-cutoff-passed")
        return self._cancel(claim, "school", request["reason"], actor_name(actor))

    def _cancel(self, claim: dict[str, Any], by: str, reason: str, who: str,
                promote: bool = True) -> dict[str, Any]:
        had_seats = claim["status"] in ("confirmed", "holding")
        done = self.repo.transition(
            claim["_id"], (claim["status"],), "cancelled", who, reason,
            set_={"release_pending": True, "cancelled_by": by} if had_seats
            else {"cancelled_by": by},
            unset=("wait_key",), events=(self._cancelled(claim, by, reason),))
        if done is None:  # it changed under us: answer with what it is now
            current = self.repo.claim(claim["_id"])
            if current["status"] in ACTIVE and current["status"] != claim["status"]:
                return self._cancel(current, by, reason, who, promote)
            return current
        if had_seats:
            self.release(done)
            if promote:
                self.promote(claim["session_id"])
        return self.repo.claim(claim["_id"])

    def release(self, claim: dict[str, Any]) -> None:
        """Give a claim's seats back; on failure the sweep tries again (release_pending)."""
        try:
            self.venues.release(claim["session_id"], claim["_id"])
        except Exception:  # noqa: BLE001 - the flag stays, the sweep retries
            log.warning("release of %s failed; the sweep will retry", claim["_id"],
                        exc_info=True)
            return
        self.repo.update_claim(claim["_id"], unset=("release_pending",))

    # -- the waitlist -----------------------------------------------------------------------
    def promote(self, session_id: str) -> list[str]:
        """Offer free seats to waitlisted claims in order; a claim takes them only whole."""
        waiting = self.repo.waitlist(session_id)
        if not waiting:
            return []
        session = self.venues.get_session(session_id)
        if session["status"] != "open" or clock.parse(session["starts_at"]) <= clock.now():
            return []
        seats_left, promoted = session["seats_left"], []
        for claim in waiting:
            if claim["seats"] > seats_left:
                continue
            taken = self.repo.transition(claim["_id"], ("waitlisted",), "holding", "system",
                                         "seats came free")
            if taken is None:
                continue
            answer = self.venues.hold(session_id, claim["_id"], claim["school_id"],
                                      claim["seats"])
            done = self.finish_hold({**claim, "status": "holding"}, answer)
            seats_left = answer["seats_left"]
            if done["status"] == "confirmed":
                promoted.append(claim["_id"])
            if answer.get("reason") in ("closed", "cancelled", "not_found"):
                break
        return promoted

    # -- venue events -----------------------------------------------------------------------
    def session_cancelled(self, session_id: str, reason: str) -> int:
        claims = self.repo.claims_on_session(session_id, ACTIVE)
        for claim in claims:
            self._cancel(claim, "venue", reason, "venue", promote=False)
        alloc = self.repo.allocation(session_id)
        if alloc is not None and alloc["state"] in ("open", "placing"):
            self.repo.finish_allocation(session_id, "cancelled")
        return len(claims)

    # -- batches (分期分批) ----------------------------------------------------------------
    def create_batch(self, actor: dict[str, Any], payload: dict[str, Any],
                     request_key: str | None = None) -> dict[str, Any]:
        school_id = school_of(actor)
        request = load(BatchRequest, payload)
        if request_key:
            known = self.repo.claim_for_request(school_id, request_key)
            if known and (existing := self.repo.find_batch(known)) is not None:
                return existing
        school = self.repo.school(school_id)
        found = {s["session_id"]: s for s in self.venues.get_sessions(request["session_ids"])}
        errors: dict[str, list[str]] = {}
        sessions = []
        for i, sid in enumerate(request["session_ids"]):
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
        held = self._school_seats(school_id, [s["session_id"] for s in sessions])
        planned, unplaced = pack(request["groups"], sessions, held)
        batch_id = new_id("bat")
        if request_key:
            batch_id = self.repo.remember_request(school_id, request_key, batch_id)
            if (existing := self.repo.find_batch(batch_id)) is not None:
                return existing
        who = actor_name(actor)
        by_id = {s["session_id"]: s for s in sessions}
        claims = [new_claim(f"{batch_id}-{n}".replace("bat_", "clm_"), school, by_id[sid],
                            groups, status="holding", actor=who, waitlist=request["waitlist"],
                            batch_id=batch_id)
                  for n, (sid, groups) in enumerate(planned.items(), start=1)]
        batch = {"_id": batch_id, "batch_id": batch_id, "school_id": school_id,
                 "mode": request["mode"], "waitlist": request["waitlist"],
                 "state": "placing", "created_at": clock.stamp(),
                 "lease_until": clock.later(BATCH_LEASE_S),
                 "claims": [c["_id"] for c in claims], "plan": claims,
                 "unplaced": [{"label": g["label"], "reason": g["reason"]} for g in unplaced],
                 "groups": request["groups"], "session_ids": request["session_ids"]}
        if request["mode"] == "all_or_nothing" and unplaced:
            batch.update(state="failed", reason="not every class fits the sessions given")
            batch.pop("lease_until")
            claims = []
        try:
            self.repo.insert_batch(batch)
        except DuplicateKeyError:  # a concurrent repeat of the same request
            return self.repo.batch(batch_id)
        if not claims:
            return batch
        # The batch (with its planned claims) is written before any hold; a crash from here
        # on is finished or undone by `recover_batches` once the batch's lease runs out.
        return self.place_batch(batch)

    def _school_seats(self, school_id: str, session_ids: list[str]) -> dict[str, int]:
        held: dict[str, int] = {}
        for sid in session_ids:
            for claim in self.repo.claims_on_session(sid, ("confirmed", "holding")):
                if claim["school_id"] == school_id:
                    held[sid] = held.get(sid, 0) + claim["seats"]
        return held

    def place_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Hold every planned claim, then confirm — or, all-or-nothing, release them all.

        Safe to run again from the start after a crash: planned claims are written if
        missing, and holds are keyed by claim id.
        """
        written = {c["_id"] for c in self.repo.claims_of_batch(batch["_id"])}
        for planned in batch.get("plan", []):
            if planned["_id"] not in written:
                self._insert_new(planned)
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
                    self.finish_hold(claim, answers[claim["_id"]])
            self.repo.update_batch(batch["_id"], {"state": "completed"})
        return self.repo.batch(batch["_id"])

    def recover_batches(self) -> int:
        """Finish or undo batches whose placing process died (their lease ran out)."""
        count = 0
        while True:
            batch = self.repo.take_stale_batch(clock.stamp(), clock.later(BATCH_LEASE_S))
            if batch is None:
                return count
            log.warning("recovering batch %s", batch["_id"])
            self.place_batch(batch)
            count += 1

    def batch_view(self, batch: dict[str, Any]) -> dict[str, Any]:
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
        status = {"placing": "placing", "completed": "completed", "failed": "failed"}[
            batch["state"]]
        return {"batch_id": batch["_id"], "school_id": batch["school_id"],
                "mode": batch["mode"], "status": status, "reason": batch.get("reason"),
                "assignments": assignments, "created_at": batch["created_at"]}

    # -- window allocation ------------------------------------------------------------------
    def allocate_due(self) -> int:
        count = 0
        while True:
            alloc = self.repo.take_due_allocation(clock.stamp(), clock.later(ALLOCATION_LEASE_S))
            if alloc is None:
                return count
            self.allocate(alloc)
            count += 1

    def allocate(self, alloc: dict[str, Any]) -> dict[str, Any]:
        session_id = alloc["_id"]
        session = self.venues.get_session(session_id)
        if session["status"] == "cancelled":
            self.session_cancelled(session_id, "the venue cancelled the session")
            return alloc
        if "seed" not in alloc:
            pending = self.repo.claims_on_session(session_id, ("pending",))
            candidates = []
            for claim in sorted(pending, key=lambda c: c["_id"]):
                school = self.repo.school(claim["school_id"])
                facts = self.repo.school_facts(claim["school_id"], claim["term"])
                candidates.append(allocation.Candidate(
                    claim["_id"], claim["school_id"],
                    bool(school.get("rural") or school.get("under_resourced")),
                    facts["confirmed_visits"], facts["no_shows"],
                    tuple((g["label"], seats_of([g])) for g in claim["groups"])))
            seed = allocation.new_seed()
            plan = allocation.plan(candidates, session["seats_left"], seed)
            alloc = self.repo.record_plan(session_id, seed, session["seats_left"], plan)
        closes = alloc["closes_at"]
        for item in alloc["plan"]:
            claim = self.repo.find_claim(item["claim_id"])
            if claim is None or claim["status"] not in ("pending", "holding"):
                continue
            key = f"{closes}|{item['rank']:06d}"
            if claim["status"] == "pending" and not item["placed"]:
                self._waitlist_allocated(claim, key)
                continue
            if claim["status"] == "pending" and item["waiting"]:
                claim = self._split(claim, item, key)
            if claim["status"] == "pending":
                claim = self.repo.transition(claim["_id"], ("pending",), "holding", "system",
                                             "placed by the allocation",
                                             set_={"wait_key": key}) or claim
            if claim["status"] == "holding":
                answer = self.venues.hold(session_id, claim["_id"], claim["school_id"],
                                          claim["seats"])
                self.finish_hold(claim, answer)
        done = self.repo.allocation(session_id) or alloc
        confirmed = [i["claim_id"] for i in done["plan"] if i["placed"]]
        waiting = [i["claim_id"] for i in done["plan"] if not i["placed"]]
        self.repo.finish_allocation(session_id, "completed", (event(
            "booking.allocation_completed", {"session_id": session_id, "seed": done["seed"],
                                             "confirmed": confirmed, "waitlisted": waiting}),))
        self.promote(session_id)
        return done

    def _waitlist_allocated(self, claim: dict[str, Any], key: str) -> None:
        if claim.get("waitlist", True):
            self.repo.transition(claim["_id"], ("pending",), "waitlisted", "system",
                                 "not placed by the allocation; waitlisted",
                                 set_={"wait_key": key},
                                 events=(event("booking.claim_waitlisted", {
                                     "claim_id": claim["_id"], "school_id": claim["school_id"],
                                     "session_id": claim["session_id"], "position": None}),))
        else:
            self.repo.transition(claim["_id"], ("pending",), "rejected", "system",
                                 "not placed by the allocation (no waitlist asked for)",
                                 set_={"reject_code": "full"})

    def _split(self, claim: dict[str, Any], item: dict[str, Any], key: str) -> dict[str, Any]:
        """Place some classes of a claim and let the rest wait, as a claim of their own."""
        placed = [g for g in claim["groups"] if g["label"] in item["placed"]]
        waiting = [g for g in claim["groups"] if g["label"] in item["waiting"]]
        rest_id = f"{claim['_id']}-w"
        if self.repo.find_claim(rest_id) is None:
            school = self.repo.school(claim["school_id"])
            session = self.venues.get_session(claim["session_id"])
            rest = new_claim(rest_id, school, session, waiting, status="pending",
                             actor="system", waitlist=claim.get("waitlist", True),
                             split_from=claim["_id"],
                             reason="classes not placed by the allocation")
            try:
                self.repo.insert_claims([rest])
            except Exception:  # noqa: BLE001 - a resumed allocation inserted it already
                pass
        self._waitlist_allocated(self.repo.claim(rest_id), key)
        return self.repo.transition(
            claim["_id"], ("pending",), "holding", "system", "placed in part by the allocation",
            set_={"groups": placed, "seats": seats_of(placed), "wait_key": key,
                  "split_into": rest_id}) or self.repo.claim(claim["_id"])

    def explain_allocation(self, session_id: str) -> dict[str, Any]:
        alloc = self.repo.allocation(session_id)
        if alloc is None or "seed" not in alloc:
            raise NotFound(f"session {session_id} has no allocation",
                           code="allocation-not-found")
        return allocation.explain(alloc)

    # -- attendance -------------------------------------------------------------------------
    def record_attendance(self, actor: dict[str, Any], session_id: str,
                          payload: dict[str, Any]) -> list[dict[str, Any]]:
        """The venue says who came, per claim; each record is announced for reports and funding."""
        request = load(AttendanceRequest, payload)
        if not actor or actor.get("role") != "venue":
            raise Forbidden("only the venue's staff record attendance")
        errors: dict[str, list[str]] = {}
        claims = []
        for i, record in enumerate(request["records"]):
            claim = self.repo.find_claim(record["claim_id"])
            field = f"records.{i}.claim_id"
            if claim is None or claim["session_id"] != session_id:
                errors[field] = ["no such claim on this session"]
            elif claim["venue_id"] != actor.get("org"):
                raise Forbidden("this session belongs to another venue")
            elif claim["status"] != "confirmed":
                errors[field] = [f"the claim is {claim['status']}, not confirmed"]
            elif record["students"] > sum(g["students"] for g in claim["groups"]):
                errors[f"records.{i}.students"] = ["more students than the claim booked"]
            else:
                claims.append((claim, record))
        if errors:
            raise ValidationFailed("attendance refused: " + "; ".join(
                f"{k}: {v[0]}" for k, v in errors.items()), errors)
        if claims and clock.parse(claims[0][0]["trip"]["starts_at"]) > clock.now():
            raise Conflict("attendance can be recorded once the session has started",
                           code="session-not-started")
        recorded = []
        for claim, record in claims:
            booked = sum(g["students"] for g in claim["groups"])
            attendance = {"students": record["students"], "teachers": record["teachers"],
                          "students_booked": booked, "no_show": record["students"] == 0,
                          "recorded_at": clock.stamp(), "recorded_by": actor_name(actor)}
            attended = event("booking.visit_attended", {
                "claim_id": claim["_id"], "school_id": claim["school_id"],
                "session_id": session_id, "venue_id": claim["venue_id"],
                "district": claim.get("district", ""), "term": claim["term"],
                "students_booked": booked, "students_attended": record["students"],
                "teachers_attended": record["teachers"], "no_show": attendance["no_show"]})
            recorded.append(self.repo.update_claim(claim["_id"], {"attendance": attendance},
                                                   events=(attended,),
                                                   only_if={"status": "confirmed"}))
        return [r for r in recorded if r is not None]

    # -- recovery ---------------------------------------------------------------------------
    def sweep(self) -> dict[str, int]:
        """Finish what a crash interrupted: holding claims, releases, batches, allocations."""
        finished = 0
        for claim in self.repo.stale_holding(clock.later(-HOLDING_GRACE_S)):
            try:
                self.finish_interrupted(claim)
            except Exception:  # noqa: BLE001 - venues unreachable: next sweep
                log.warning("sweep could not re-hold %s", claim["_id"], exc_info=True)
                continue
            finished += 1
        released = 0
        for claim in self.repo.pending_releases():
            self.release(claim)
            released += 1
        return {"holding": finished, "released": released, "batches": self.recover_batches(),
                "allocations": self.allocate_due()}
