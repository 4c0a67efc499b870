"""Runs one nameko service in this process: `python -m services.kit.runner venues`.

Eventlet must patch the standard library before anything imports sockets, so this module
patches first and imports the service afterwards. SIGTERM and SIGINT stop the container
gracefully (in-flight workers finish, unacked messages go back to the broker).
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", message=".*Eventlet is deprecated.*")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import importlib  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from services.kit import logs  # noqa: E402
from services.kit.config import Settings  # noqa: E402
from services.kit.services import SERVICES, target  # noqa: E402  (kit.runner.SERVICES stays)

log = logging.getLogger("kepu.runner")


def load_service(name: str) -> Any:
    module_name, _, attr = target(name).partition(":")
    return getattr(importlib.import_module(module_name), attr)


def service_config(settings: Settings) -> dict[str, Any]:
    return {**settings.nameko_config(), "KEPU_SETTINGS": settings}


def heartbeat(path: Path, every: float = 5.0) -> None:
    """Touch `path` while the hub runs; a container liveness probe reads its age."""
    while True:
        path.touch()
        eventlet.sleep(every)


def run(names: list[str]) -> None:
    settings = Settings.from_env()
    logs.configure("+".join(names), settings.log_level)
    runner = ServiceRunner(service_config(settings))
    for name in names:
        runner.add_service(load_service(name))

    stopping = eventlet.event.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if not stopping.ready():
            stopping.send(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    beat = os.environ.get("KEPU_HEARTBEAT_FILE")  # touched once consumers are up: readiness too
    if beat:
        Path(beat).unlink(missing_ok=True)  # a restarted container is not ready until started
    runner.start()
    log.info("service started", extra={"services": names})
    if beat:
        eventlet.spawn(heartbeat, Path(beat))

    def watch() -> None:
        try:
            runner.wait()
        except Exception:  # noqa: BLE001 - a container died; the process must end too
            log.exception("service container crashed")
            if not stopping.ready():
                stopping.send("crashed")

    eventlet.spawn(watch)
    reason = stopping.wait()
    log.info("stopping", extra={"reason": str(reason)})
    with eventlet.Timeout(20, False):
        runner.stop()
    runner.kill()
    if reason == "crashed":
        sys.exit(1)


def main() -> None:
    names = sys.argv[1:]
    if not names:
        sys.exit(f"usage: python -m services.kit.runner SERVICE...  ({', '.join(SERVICES)})")
    run(names)


if __name__ == "__main__":
    main()
