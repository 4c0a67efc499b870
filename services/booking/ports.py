"""What the booking jobs read from outside them: venues, monitoring and booking's own schools.

`Venues` is the slice of the venues service booking calls (the nameko RPC proxy in the
service, an in-memory fake in unit tests). `SchoolHistory` is monitoring's
`school_history`, what window allocation weighs (docs/monitoring.md, "Fairness"); in the
service it is asked with a short deadline (`BoundedHistory`), since an allocation falls
back to booking's own counts rather than wait. `Lookups` reads sessions and schools, at most
once a second per process when the caller allows it: a burst of claims on one popular
session asks venues once, not once per claim.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import MutableMapping
from typing import Any, Protocol

import eventlet

from services.booking.repository import BookingRepository
from services.kit.errors import NotFound, Unavailable, ValidationFailed

log = logging.getLogger("kepu.booking")


HISTORY_DEADLINE_S = 2.0  # monitoring's answer is worth waiting for this long, no longer


class SchoolHistory(Protocol):
    def school_history(self, school_ids: list[str], term: str
                       ) -> dict[str, dict[str, int]]: ...


class BoundedHistory:
    """A `SchoolHistory` that gives up after `seconds` (raising Unavailable): the RPC
    client's own deadline is the general one, far longer than an allocation should wait."""

    def __init__(self, client: SchoolHistory, seconds: float = HISTORY_DEADLINE_S) -> None:
        self.client = client
        self.seconds = seconds

    def school_history(self, school_ids: list[str], term: str) -> dict[str, dict[str, int]]:
        late = Unavailable(f"monitoring.school_history did not answer within "
                           f"{self.seconds:g}s", code="upstream-timeout")
        with eventlet.Timeout(self.seconds, late):
            return self.client.school_history(school_ids, term)


class Venues(Protocol):
    def get_session(self, session_id: str) -> dict[str, Any]: ...
    def get_sessions(self, session_ids: list[str]) -> list[dict[str, Any]]: ...
    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int) -> dict: ...
    def release(self, session_id: str, claim_id: str) -> dict[str, Any]: ...
    def get_tutor(self, tutor_id: str) -> dict[str, Any]: ...


def fault(point: str) -> None:
    """Crash drills: KEPU_BOOKING_FAULT=<point> kills this process there, as a power cut would."""
    if os.environ.get("KEPU_BOOKING_FAULT") == point:
        log.warning("fault drill: killing booking at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)


class _Forgetful(dict):
    """No caching (the default, e.g. in unit tests)."""

    def __setitem__(self, key: str, value: Any) -> None:
        pass


class Lookups:
    def __init__(self, repo: BookingRepository, venues: Venues,
                 recent: MutableMapping[str, Any] | None = None) -> None:
        self.repo = repo
        self.venues = venues
        self.recent = recent if recent is not None else _Forgetful()

    def session(self, session_id: str, field: str = "session_id",
                fresh: bool = True) -> dict[str, Any]:
        """A session as the venues service describes it; unknown → ValidationFailed on `field`.

        `fresh=False` accepts one read in the last second: used only to check a claim before
        its hold, and the hold itself is decided on the venues service's current state.
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
