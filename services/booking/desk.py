"""The booking desk: the booking jobs wired together over one repository and one venues client.

Each job lives in its own module: the claim flow (`claim_flow`), seats for one claim
(`seating`), the waitlist (`waitlist`), batch placement (`batch_placement`), window
allocation (`window_allocation`), attendance (`attendance`), the recovery sweep
(`recovery`), who reads what (`claim_reads`), and tutor visits (`visits`). The service's
entrypoints and the unit tests reach them through a desk.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from services.booking.batch_placement import BatchPlacement
from services.booking.claim_flow import ClaimFlow
from services.booking.claim_reads import ClaimReads
from services.booking.directory import SchoolDirectory
from services.booking.ports import Lookups, SchoolHistory, Venues, fault
from services.booking.recovery import Recovery
from services.booking.repository import BookingRepository
from services.booking.seating import Seating
from services.booking.visits import TutorVisits
from services.booking.waitlist import Waitlist
from services.booking.window_allocation import WindowAllocation


class BookingDesk:
    def __init__(self, repo: BookingRepository, venues: Venues,
                 fault: Callable[[str], None] = fault,
                 sessions: MutableMapping[str, Any] | None = None,
                 history: SchoolHistory | None = None,
                 schools: SchoolDirectory | None = None) -> None:
        self.repo = repo
        # sessions: the process's kept sessions; schools: its school directory (None: read)
        self.lookups = Lookups(repo, venues, sessions, schools)
        self.seating = Seating(repo, venues)
        self.waitlist = Waitlist(repo, venues, self.seating)
        self.claims = ClaimFlow(repo, self.lookups, self.seating, self.waitlist)
        self.reads = ClaimReads(repo, self.waitlist)
        self.batches = BatchPlacement(repo, venues, self.seating, fault)
        # history: monitoring's school_history (None: booking's own counts)
        self.windows = WindowAllocation(repo, venues, self.seating, self.waitlist, self.claims,
                                        history)
        self.recovery = Recovery(repo, self.seating, self.batches, self.windows)
        self.visits = TutorVisits(repo, venues)
