"""Route modules, one per area of the API; importing them registers their routes."""

from __future__ import annotations

from services.gateway.routing import ROUTES, Route


def all_routes() -> list[Route]:
    from services.gateway.routes import (  # noqa: F401
        admissions,
        booking,
        funding,
        identity,
        monitoring,
        notifications,
        registration,
        venues,
    )

    return list(ROUTES)
