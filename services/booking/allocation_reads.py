"""A window session's allocation as the API shows it: the recorded seed, the order rules and
each claim's place, outcome and the reason for it.

The venue that runs the session and an admin see every claim in the draw; a school sees
only its own claims (their rank among all, and how many there were), never another
school's claim, facts or lottery number. Anyone else, or a school with no claim on the
session, reads it as not found. The seed is shown to all who may read: with it, anyone
holding a claim's recorded facts can re-run the order (`allocation.explain`).
"""

from __future__ import annotations

from typing import Any

from services.booking import allocation
from services.booking.repository import BookingRepository
from services.kit.actor import Actor
from services.kit.errors import NotFound

RULES = ("priority_school", "fewer_confirmed_visits", "fewer_no_shows", "lottery")


def reason(item: dict[str, Any], total: int) -> str:
    """Why a claim got its place and outcome, in a sentence (the facts are in the item)."""
    facts = [("a priority school (rural or under-resourced)" if item["priority_school"]
              else "not a priority school"),
             f"{item['confirmed_visits']} confirmed visit(s) this term",
             f"{item['no_shows']} no-show(s) this term",
             f"lottery {item['lottery'][:8]}"]
    outcome = {"confirmed": "every class fitted in the seats left",
               "partial": "only some classes fitted; the others wait on the waitlist",
               "waitlisted": "no class fitted in the seats left"}[item["outcome"]]
    return f"ranked {item['rank']} of {total}: {', '.join(facts)}; {outcome}"


def _reader(actor: Actor, parties: list[dict[str, Any]]) -> str | None:
    """The school whose claims alone `actor` sees; None: all of them. NotFound if neither."""
    if actor.is_admin:
        return None
    if actor.role == "venue" and any(actor.owns(p.get("venue_id")) for p in parties):
        return None
    if actor.role == "school" and any(actor.owns(p["school_id"]) for p in parties):
        return actor.org
    raise NotFound("no allocation of this session is known to you",
                   code="allocation-not-found")


def allocation_view(repo: BookingRepository, actor: Actor, session_id: str
                    ) -> dict[str, Any]:
    alloc = repo.allocation(session_id)
    if alloc is None:
        raise NotFound("this session has no allocation (it is not a window session, or no "
                       "claim was made)", code="allocation-not-found")
    only = _reader(actor, repo.session_parties(session_id))
    view: dict[str, Any] = {
        "session_id": session_id, "state": alloc.get("state", "open"),
        "closes_at": alloc.get("closes_at"), "rules": list(RULES),
        "seed": alloc.get("seed"), "seats_left": alloc.get("seats_left"),
        "planned_at": alloc.get("planned_at"), "claims": 0, "reproduced": None, "items": []}
    if "seed" not in alloc:
        return view  # the window has not closed yet: nothing drawn
    plan = alloc["plan"]
    view["claims"] = len(plan)
    view["reproduced"] = allocation.explain(alloc)["reproduced"]
    view["items"] = [
        {**{k: item[k] for k in ("claim_id", "school_id", "rank", "outcome", "placed",
                                 "waiting", "priority_school", "confirmed_visits",
                                 "no_shows", "lottery")},
         "reason": reason(item, len(plan))}
        for item in plan if only is None or item["school_id"] == only]
    return view
