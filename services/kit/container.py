"""The nameko container Kepu runs services in: each service sizes its own worker pool.

Services differ in what a worker waits on. A booking worker holds the database for most of
its life, so more of them only queue on it. A notifications worker mostly waits for SMTP
and the providers, and with nameko's default of 10 its event queue backed up during a claim
burst while the database had room. A service class may state `max_workers = N`;
`KEPU_MAX_WORKERS`, when set, applies to every service instead.
"""

from __future__ import annotations

from typing import Any

from eventlet.greenpool import GreenPool
from nameko.constants import DEFAULT_MAX_WORKERS, MAX_WORKERS_CONFIG_KEY
from nameko.containers import ServiceContainer


def workers_for(service_cls: type, config: dict[str, Any]) -> int:
    """The configured number if set, else the service's own, else nameko's default (10)."""
    return (config.get(MAX_WORKERS_CONFIG_KEY) or getattr(service_cls, "max_workers", None)
            or DEFAULT_MAX_WORKERS)


class Container(ServiceContainer):
    def __init__(self, service_cls: type, config: dict[str, Any]) -> None:
        super().__init__(service_cls, config)
        self.max_workers = workers_for(service_cls, config)
        # the pool nameko built is unused until start, and consumers read max_workers for
        # their prefetch count when they start
        self._worker_pool = GreenPool(size=self.max_workers)
