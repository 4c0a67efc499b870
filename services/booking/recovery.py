"""The recovery sweep: finish what a crash or an unreachable venues service interrupted.

Run every second by the service's timer (and by any replica: each step takes its work
with a conditional update or a lease): window allocations that are due each time; claims
left `holding`, releases that failed and batches whose placer died when `interrupted`
(every few seconds: each is looked for only after a 10 s grace or a lease, so scanning
for them every second cost three reads a second on an idle stack for nothing).
"""

from __future__ import annotations

import logging

from services.booking.batch_placement import BatchPlacement
from services.booking.repository import BookingRepository
from services.booking.seating import Seating
from services.booking.window_allocation import WindowAllocation
from services.kit import clock

log = logging.getLogger("kepu.booking")

HOLDING_GRACE_S = 10  # a claim still `holding` after this is finished by the sweep


class Recovery:
    def __init__(self, repo: BookingRepository, seating: Seating, batches: BatchPlacement,
                 windows: WindowAllocation) -> None:
        self.repo = repo
        self.seating = seating
        self.batches = batches
        self.windows = windows

    def sweep(self, interrupted: bool = True) -> dict[str, int]:
        if not interrupted:
            return {"holding": 0, "released": 0, "batches": 0,
                    "allocations": self.windows.allocate_due()}
        finished = 0
        for claim in self.repo.stale_holding(clock.later(-HOLDING_GRACE_S)):
            try:
                self.seating.resume(claim)
            except Exception:  # noqa: BLE001 - venues unreachable: next sweep
                log.warning("sweep could not re-hold %s", claim["_id"], exc_info=True)
                continue
            finished += 1
        released = 0
        for claim in self.repo.pending_releases():
            self.seating.release(claim)
            released += 1
        return {"holding": finished, "released": released, "batches": self.batches.recover(),
                "allocations": self.windows.allocate_due()}
