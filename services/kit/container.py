"""The nameko container Kepu runs services in: each service sizes its own worker pool, and
every `@rpc` runs as `services.kit.rpc.Rpc`.

Services differ in what a worker waits on. A booking worker holds the database for most of
its life, so more of them only queue on it. A notifications worker mostly waits for SMTP
and the providers, and with nameko's default of 10 its event queue backed up during a claim
burst while the database had room. A service class may state `max_workers = N`;
`KEPU_MAX_WORKERS`, when set, applies to every service instead.

Services (and the `Health` mixin) declare `from nameko.rpc import rpc`; the container binds
each such entrypoint as the kit's `Rpc`, which answers the same messages for less CPU.
All of a service's RPC methods must share one consumer of its queue, so it is all or none.
"""

from __future__ import annotations

import inspect
from typing import Any

from eventlet.greenpool import GreenPool
from nameko import rpc as nameko_rpc
from nameko.constants import DEFAULT_MAX_WORKERS, MAX_WORKERS_CONFIG_KEY
from nameko.containers import ServiceContainer, is_method
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR, iter_extensions
from nameko.utils.concurrency import SpawningSet

from services.kit.rpc import Rpc


def workers_for(service_cls: type, config: dict[str, Any]) -> int:
    """The configured number if set, else the service's own, else nameko's default (10)."""
    return (config.get(MAX_WORKERS_CONFIG_KEY) or getattr(service_cls, "max_workers", None)
            or DEFAULT_MAX_WORKERS)


def kit_entrypoint(entrypoint: Any) -> Any:
    """nameko's own `Rpc` becomes the kit's; every other entrypoint stays as declared."""
    return Rpc.like(entrypoint) if type(entrypoint) is nameko_rpc.Rpc else entrypoint


class Container(ServiceContainer):
    def __init__(self, service_cls: type, config: dict[str, Any]) -> None:
        super().__init__(service_cls, config)
        self.max_workers = workers_for(service_cls, config)
        # the pool nameko built is unused until start, and consumers read max_workers for
        # their prefetch count when they start
        self._worker_pool = GreenPool(size=self.max_workers)
        self._bind_kit_entrypoints()

    def _bind_kit_entrypoints(self) -> None:
        """Rebind the entrypoints as nameko's __init__ did, with `kit_entrypoint` applied.
        Nothing is started yet; the dependencies' bindings (and their shared extensions,
        e.g. RPC proxies' reply listener) are kept."""
        kept = set()
        for dependency in self.dependencies:
            kept.update(iter_extensions(dependency))
        self.shared_extensions = {ext.sharing_key: ext for ext in kept
                                  if hasattr(ext, "sharing_key")}
        self.entrypoints = SpawningSet()
        self.subextensions = SpawningSet(kept)
        for method_name, method in inspect.getmembers(self.service_cls, is_method):
            for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, []):
                bound = kit_entrypoint(entrypoint).bind(self.interface, method_name)
                self.entrypoints.add(bound)
                self.subextensions.update(iter_extensions(bound))
