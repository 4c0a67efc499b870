"""Window allocation: a window session's pending claims are placed once, when its window closes.

The first claim notes an allocation due at the session's window close; a venue that moves
the close (`venues.session_updated`) moves it too, and an allocation taken early (an
event still on its way) goes back to waiting when the session's current close is still
ahead: the allocation never runs while claims may still come. The plan (seed, order) is
recorded before any hold, so an allocator that dies mid-way is resumed from it.

The facts the order weighs (confirmed visits and no-shows this term, per school) come from
monitoring's `school_history`, the same facts the district's figures count (issue 14,
item 7): one call per allocation for every school in the draw. If monitoring does not
answer (in time, or at all, or with a malformed answer), booking counts its own claims
(`BookingRepository.school_facts`). Each recorded plan item names the source of its facts
(`facts_source`: "monitoring" or "booking"), and `explain` replays from the recorded facts,
never asking either again.
"""

from __future__ import annotations

import logging
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.booking import allocation, claim_events
from services.booking.claim_flow import ClaimFlow
from services.booking.claims import new_claim, seats_of
from services.booking.ports import SchoolHistory, Venues
from services.booking.repository import BookingRepository
from services.booking.seating import Seating
from services.booking.waitlist import Waitlist
from services.kit import clock
from services.kit.errors import NotFound

ALLOCATION_LEASE_S = 30
MONITORING, BOOKING = "monitoring", "booking"  # where an allocation's facts came from

log = logging.getLogger("kepu.booking")


class WindowAllocation:
    def __init__(self, repo: BookingRepository, venues: Venues, seating: Seating,
                 waitlist: Waitlist, claims: ClaimFlow,
                 history: SchoolHistory | None = None) -> None:
        self.repo = repo
        self.venues = venues
        self.history = history
        self.seating = seating
        self.waitlist = waitlist
        self.claims = claims

    def window_moved(self, session_id: str, closes_at: str | None) -> bool:
        """The venue moved the window's close: a waiting allocation runs at the new time."""
        if not closes_at:
            return False
        return self.repo.move_allocation(session_id, closes_at)

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
            self.claims.session_cancelled(session_id, "the venue cancelled the session")
            return alloc
        if "seed" not in alloc:
            closes = session.get("window_closes_at")
            if closes and clock.parse(closes) > clock.now():
                # The window was extended: claims may still come; wait for its close.
                self.repo.move_allocation(session_id, closes, taken=True)
                return self.repo.allocation(session_id) or alloc
            alloc = self._plan(session_id, session["seats_left"])
        for item in alloc["plan"]:
            self._place(session_id, alloc["closes_at"], item)
        done = self.repo.allocation(session_id) or alloc
        confirmed = [i["claim_id"] for i in done["plan"] if i["placed"]]
        waiting = [i["claim_id"] for i in done["plan"] if not i["placed"]]
        self.repo.finish_allocation(session_id, "completed", (claim_events.allocation_completed(
            session_id, done["seed"], confirmed, waiting),))
        self.waitlist.promote(session_id)
        return done

    def _plan(self, session_id: str, seats_left: int) -> dict[str, Any]:
        """Order the pending claims (recorded once: a resumed allocation keeps the first)."""
        pending = sorted(self.repo.claims_on_session(session_id, ("pending",)),
                         key=lambda c: c["_id"])
        history, source = self.school_history(pending)
        candidates = []
        for claim in pending:
            school = self.repo.school(claim["school_id"])
            facts = history[(claim["school_id"], claim["term"])]
            candidates.append(allocation.Candidate(
                claim["_id"], claim["school_id"],
                bool(school.get("rural") or school.get("under_resourced")),
                facts["confirmed_visits"], facts["no_shows"],
                tuple((g["label"], seats_of([g])) for g in claim["groups"])))
        seed = allocation.new_seed()
        plan = [{**item, "facts_source": source}
                for item in allocation.plan(candidates, seats_left, seed)]
        return self.repo.record_plan(session_id, seed, seats_left, plan)

    def school_history(self, claims: list[dict[str, Any]]
                       ) -> tuple[dict[tuple[str, str], dict[str, int]], str]:
        """({(school, term): {confirmed_visits, no_shows}}, where they came from): asked of
        monitoring once for all the schools (a session's claims share its term), else
        counted by booking."""
        wanted: dict[str, list[str]] = {}
        for claim in claims:
            wanted.setdefault(claim["term"], []).append(claim["school_id"])
        wanted = {term: sorted(set(ids)) for term, ids in wanted.items()}
        if self.history is not None and wanted:
            try:
                return self._asked(wanted), MONITORING
            except Exception as exc:  # noqa: BLE001 - any failure: count our own
                log.warning("window allocation: monitoring's school history unavailable "
                            "(%s); using booking's own counts", exc)
        return {(sid, term): self.repo.school_facts(sid, term)
                for term, ids in wanted.items() for sid in ids}, BOOKING

    def _asked(self, wanted: dict[str, list[str]]) -> dict[tuple[str, str], dict[str, int]]:
        """Monitoring's answer, checked: every school asked about, two counts each."""
        assert self.history is not None
        out = {}
        for term, ids in wanted.items():
            answer = self.history.school_history(ids, term)
            for sid in ids:
                facts = answer[sid]
                counts = {k: facts[k] for k in ("confirmed_visits", "no_shows")}
                if not all(type(v) is int and v >= 0 for v in counts.values()):
                    raise ValueError(f"school_history answered {facts!r} for {sid}")
                out[(sid, term)] = counts
        return out

    def _place(self, session_id: str, closes: str, item: dict[str, Any]) -> None:
        """Carry out one claim's line of the plan (again, harmlessly, after a crash)."""
        claim = self.repo.find_claim(item["claim_id"])
        if claim is None or claim["status"] not in ("pending", "holding"):
            return
        key = f"{closes}|{item['rank']:06d}"
        if claim["status"] == "pending" and not item["placed"]:
            self._not_placed(claim, key)
            return
        if claim["status"] == "pending" and item["waiting"]:
            claim = self._split(claim, item, key)
        if claim["status"] == "pending":
            claim = self.repo.transition(claim["_id"], ("pending",), "holding", "system",
                                         "placed by the allocation",
                                         set_={"wait_key": key}) or claim
        if claim["status"] == "holding":
            self.seating.hold(claim)

    def _not_placed(self, claim: dict[str, Any], key: str) -> None:
        if claim.get("waitlist", True):
            self.seating.to_waitlist(claim, ("pending",),
                                     "not placed by the allocation; waitlisted", key)
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
            except DuplicateKeyError:  # a resumed allocation inserted it already
                pass
        self._not_placed(self.repo.claim(rest_id), key)
        return self.repo.transition(
            claim["_id"], ("pending",), "holding", "system", "placed in part by the allocation",
            set_={"groups": placed, "seats": seats_of(placed), "wait_key": key,
                  "split_into": rest_id}) or self.repo.claim(claim["_id"])

    def explain(self, session_id: str) -> dict[str, Any]:
        alloc = self.repo.allocation(session_id)
        if alloc is None or "seed" not in alloc:
            raise NotFound(f"session {session_id} has no allocation",
                           code="allocation-not-found")
        return allocation.explain(alloc)
