"""A stand-in for the RPC client: the gateway's tests run without a broker or services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.kit.errors import Unavailable


class FakeRpc:
    """Answers `rpc.SERVICE.METHOD(...)` with functions the test sets; records every call."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], Callable[..., Any]] = {}
        self.calls: list[tuple[str, str, tuple, dict]] = []
        self.broker_up = True

    def on(self, service: str, method: str, answer: Callable[..., Any]) -> None:
        self.answers[(service, method)] = answer

    def count(self, service: str, method: str) -> int:
        return sum(1 for s, m, _, _ in self.calls if (s, m) == (service, method))

    def call(self, service: str, method: str, *args: Any, timeout: float | None = None,
             **kwargs: Any) -> Any:
        self.calls.append((service, method, args, kwargs))
        answer = self.answers.get((service, method))
        if answer is None:
            if method == "ping":
                return {"service": service, "ok": True}
            raise Unavailable(f"{service}.{method}: no such fake answer")
        return answer(*args, **kwargs)

    def check(self) -> None:
        if not self.broker_up:
            raise Unavailable("message broker unreachable")

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        rpc = self

        class Proxy:
            def __getattr__(self, method: str) -> Any:
                return lambda *a, **k: rpc.call(service, method, *a, **k)

        return Proxy()
