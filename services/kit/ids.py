"""Readable, prefixed identifiers: `ven_…` venue, `sch_…` school, `ses_…` session, …"""

from __future__ import annotations

import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"
