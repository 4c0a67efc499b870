"""Fair allocation of a window session's claims, reproducible from a recorded seed.

Order: rural and under-resourced schools first, then schools with fewer confirmed visits
this term, then fewer no-shows this term, then a lottery. The lottery number of a claim is
a hash of the seed and the claim id, so anyone holding the seed and the recorded facts can
re-run the allocation and get the same order (`explain`). Placement walks that order and
places whole classes: a claim is confirmed whole if it fits, else as many of its classes
as fit (the rest wait, split into a claim of their own), never part of a class.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Candidate:
    """The facts about one pending claim that decide its place."""

    claim_id: str
    school_id: str
    priority_school: bool  # rural or under-resourced
    confirmed_visits: int
    no_shows: int
    groups: tuple[tuple[str, int], ...]  # (label, seats) in the claim's order

    def as_dict(self) -> dict[str, Any]:
        return {"claim_id": self.claim_id, "school_id": self.school_id,
                "priority_school": self.priority_school,
                "confirmed_visits": self.confirmed_visits, "no_shows": self.no_shows,
                "groups": [list(g) for g in self.groups]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        return cls(data["claim_id"], data["school_id"], data["priority_school"],
                   data["confirmed_visits"], data["no_shows"],
                   tuple((label, seats) for label, seats in data["groups"]))


@dataclass
class Placement:
    claim_id: str
    placed: list[str] = field(default_factory=list)  # labels
    waiting: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        if self.placed and self.waiting:
            return "partial"
        return "confirmed" if self.placed else "waitlisted"


def new_seed() -> str:
    return secrets.token_hex(16)


def lottery(seed: str, claim_id: str) -> str:
    return hashlib.sha256(f"{seed}:{claim_id}".encode()).hexdigest()


def order(candidates: list[Candidate], seed: str) -> list[Candidate]:
    return sorted(candidates, key=lambda c: (not c.priority_school, c.confirmed_visits,
                                             c.no_shows, lottery(seed, c.claim_id)))


def place(ordered: list[Candidate], seats_left: int) -> list[Placement]:
    """Walk the order once; each claim takes the whole classes that still fit."""
    placements = []
    for cand in ordered:
        placement = Placement(cand.claim_id)
        whole = sum(seats for _, seats in cand.groups)
        if whole <= seats_left:
            placement.placed = [label for label, _ in cand.groups]
            seats_left -= whole
        else:
            for label, seats in cand.groups:
                if seats <= seats_left:
                    placement.placed.append(label)
                    seats_left -= seats
                else:
                    placement.waiting.append(label)
        placements.append(placement)
    return placements


def plan(candidates: list[Candidate], seats_left: int, seed: str) -> list[dict[str, Any]]:
    """The allocation as recorded: each claim in order with its facts, lottery and outcome."""
    ordered = order(candidates, seed)
    return [{**cand.as_dict(), "lottery": lottery(seed, cand.claim_id), "rank": rank,
             "placed": p.placed, "waiting": p.waiting, "outcome": p.outcome}
            for rank, (cand, p) in enumerate(zip(ordered, place(ordered, seats_left),
                                                 strict=True), start=1)]


def explain(recorded: dict[str, Any]) -> dict[str, Any]:
    """Re-run a recorded allocation from its seed and facts; say whether it reproduces."""
    candidates = [Candidate.from_dict(item) for item in recorded["plan"]]
    rerun = plan(candidates, recorded["seats_left"], recorded["seed"])
    strip = [{k: item[k] for k in ("claim_id", "rank", "placed", "waiting", "outcome")}
             for item in rerun]
    stored = [{k: item[k] for k in ("claim_id", "rank", "placed", "waiting", "outcome")}
              for item in recorded["plan"]]
    return {"session_id": recorded["_id"], "seed": recorded["seed"],
            "seats_left": recorded["seats_left"], "reproduced": strip == stored,
            "order": rerun}
