"""The one list of services: adding a service is its own package plus one line here.

Everything that needs to know which services exist reads this module: the runner (which
class to start), the development stack (which processes to run), the gateway's health
check (which services to ping), the test event tap (whose events exchanges to bind) and
the Kubernetes manifest generator (deploy/k8s). `make deploy-check` verifies that every
name here has its manifests, health check and stack entry.

This module imports nothing heavy (no eventlet, no nameko), so tools and the gateway can
read it without patching or loading service code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

SERVICES: dict[str, str] = {
    "identity": "services.identity.service:IdentityService",
    "venues": "services.venues.service:VenuesService",
    "booking": "services.booking.service:BookingService",
    "notifications": "services.notifications.service:NotificationsService",
    "funding": "services.funding.service:FundingService",
    "monitoring": "services.monitoring.service:MonitoringService",
    "admissions": "services.admissions.service:AdmissionsService",
}


def names() -> tuple[str, ...]:
    """Every registered service, in registration (start) order."""
    return tuple(SERVICES)


def target(name: str) -> str:
    """The "module:Class" of a registered service; other strings pass through unchanged
    (a test probe is started as "tests.probe:ProbeService")."""
    return SERVICES.get(name, name)


def producers() -> tuple[str, ...]:
    """The services that publish domain events on their own events exchange: every one."""
    return names()


def selected(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The services a (partial) stack runs: those KEPU_SERVICES names, else all of them.

    Unknown names are dropped, so a typo never makes the health check wait on a service
    no process runs."""
    env = os.environ if env is None else env
    wanted = [s.strip() for s in env.get("KEPU_SERVICES", "").split(",") if s.strip()]
    if not wanted:
        return names()
    return tuple(s for s in SERVICES if s in wanted)
