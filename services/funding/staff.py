"""Who may touch a district's money: finance staff, each for the district of their org.

The org is the district's id (`dis_…`, identity's organisation; docs/districts.md), the key
of every funding record. Admins are refused too: a district's funding is the bureau's own
business. Another district's records answer 404 in each domain object, as if they did not
exist.
"""

from __future__ import annotations

from services.kit.actor import Actor


def finance_staff(actor: Actor) -> tuple[str, str]:
    """(district, sub) of a finance user; Forbidden for anyone else."""
    district = actor.org_as("finance", "funding is for the finance staff of a district")
    return district, actor.sub
