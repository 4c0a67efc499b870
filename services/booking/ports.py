"""What the booking jobs read from outside them: venues, monitoring and booking's own schools.

`Venues` is the slice of the venues service booking calls (the nameko RPC proxy in the
service, an in-memory fake in unit tests). `SchoolHistory` is monitoring's
`school_history`, what window allocation weighs (docs/monitoring.md, "Fairness"); in the
service it is asked with a short deadline (`BoundedHistory`), since an allocation falls
back to booking's own counts rather than wait. `Lookups` reads sessions and schools for the
claim path: a session is kept `SESSION_KEEP_S` per process (a burst of claims on one popular
session asks venues once), which is safe because the hold itself requires the session
version the claim was checked against (`expected_version`, see claim_flow); schools come
from the per-process directory (`directory.SchoolDirectory`).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import MutableMapping
from typing import Any, Protocol

import eventlet

from services.booking.directory import SchoolDirectory
from services.booking.repository import BookingRepository
from services.kit.errors import NotFound, Unavailable, ValidationFailed

log = logging.getLogger("kepu.booking")


HISTORY_DEADLINE_S = 2.0  # monitoring's answer is worth waiting for this long, no longer
SESSION_KEEP_S = 30.0  # a session read for claim checks serves this long (the hold re-proves it)
WINDOW_SESSION_KEEP_S = 1.0  # a window claim has no hold to prove its checks: shorter


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
    def hold(self, session_id: str, claim_id: str, school_id: str, seats: int,
             expected_version: int | None = None) -> dict: ...
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
                 sessions: MutableMapping[str, Any] | None = None,
                 schools: SchoolDirectory | None = None) -> None:
        self.repo = repo
        self.venues = venues
        self.sessions = sessions if sessions is not None else _Forgetful()
        self.schools = schools

    def session(self, session_id: str, field: str = "session_id",
                max_age: float = 0.0) -> dict[str, Any]:
        """A session as the venues service describes it; unknown → ValidationFailed on `field`.

        `max_age` > 0 accepts a copy read that many seconds ago: used only to check a claim
        before its hold, and the hold requires the version checked (`expected_version`).
        """
        kept = self.sessions.get(session_id) if max_age > 0 else None
        if kept is not None and time.monotonic() - kept[0] <= max_age:
            return kept[1]
        read_at = time.monotonic()
        try:
            session = self.venues.get_session(session_id)
        except NotFound:
            raise ValidationFailed(f"no session {session_id}",
                                   {field: ["no such session"]}) from None
        self.sessions[session_id] = (read_at, session)
        return session

    def forget_session(self, session_id: str) -> None:
        """The hold said the copy is stale: the next read asks venues."""
        self.sessions.pop(session_id, None)

    def school(self, school_id: str) -> dict[str, Any]:
        """What a claim copies from its school (the directory when there is one)."""
        if self.schools is None:
            return self.repo.school(school_id)
        return self.schools.school(self.repo.db.schools, school_id)
