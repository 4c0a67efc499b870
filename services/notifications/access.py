"""Who may see a school's rosters, delivery log and consents: that school's staff only.

Guardians' contacts are the most sensitive data Kepu holds; not even admins list them.
"""

from __future__ import annotations

from typing import Any

from services.kit.errors import Forbidden


def require_school(actor: dict[str, Any] | None, school_id: str, what: str) -> None:
    if not actor or actor.get("role") != "school" or actor.get("org") != school_id:
        raise Forbidden(f"only the school itself may read or change its {what}",
                        code="not-your-school")
