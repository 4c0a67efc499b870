"""Per-client rate limits: a token bucket per client address and route group, in process.

Groups: `consent` (the public consent links: no token, so the address is all there is),
`health` (`/readyz`, `/healthz`: each one fans out to every service) and `default`
(every other API route). `/livez` is not limited: it answers from memory, cheaper than the
bucket. A refused request gets 429 problem+json with `Retry-After` (whole seconds).

Each gateway process keeps its own buckets, so a client's allowance grows with the number
of gateway workers; the limits are a guard against one client flooding, not a quota.
Behind proxies set `KEPU_PROXY_HOPS` to their number: the client is then the address that
many hops back in `X-Forwarded-For` (never a value the client alone could forge).

`KEPU_RATE_LIMITS` overrides groups: `default=500:1000,consent=5:60` (tokens per second
and burst); `off` disables limiting.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.gateway.problems import Problem


@dataclass(frozen=True)
class Rate:
    per_s: float  # tokens added per second
    burst: int  # the bucket's size: requests allowed at once


DEFAULT_RATES = {
    "default": Rate(500, 1000),  # above a holiday burst from one load generator (bench)
    "consent": Rate(5, 60),  # a parent opens a link and answers; a class behind one NAT
    "health": Rate(10, 30),  # probes and `make up` poll a few times a second
}
MAX_CLIENTS = 50_000  # buckets kept per process; the least recently used go first


def parse_rates(text: str) -> dict[str, Rate] | None:
    """`KEPU_RATE_LIMITS` on top of the defaults; None when limiting is `off`."""
    rates = dict(DEFAULT_RATES)
    text = text.strip()
    if text.lower() == "off":
        return None
    for item in filter(None, (part.strip() for part in text.split(","))):
        group, _, spec = item.partition("=")
        per_s, _, burst = spec.partition(":")
        try:
            rates[group.strip()] = Rate(float(per_s), int(burst or max(1, float(per_s))))
        except ValueError:
            raise ValueError(f"KEPU_RATE_LIMITS: {item!r} is not group=rate:burst") from None
    return rates


class _Bucket:
    __slots__ = ("tokens", "at")

    def __init__(self, tokens: float, at: float) -> None:
        self.tokens = tokens
        self.at = at


class Throttle:
    """Token buckets keyed by (group, client); `take` refuses with a 429 Problem."""

    def __init__(self, rates: dict[str, Rate] | None,
                 now: Callable[[], float] = time.monotonic,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.rates = rates
        self.now = now
        self.max_clients = max_clients
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def wait_s(self, group: str, client: str) -> float:
        """0 if the request may go now (a token is taken), else seconds until it may."""
        if self.rates is None:
            return 0.0
        rate = self.rates.get(group) or self.rates["default"]
        now = self.now()
        with self._lock:
            bucket = self._buckets.pop((group, client), None)
            if bucket is None:
                bucket = _Bucket(float(rate.burst), now)
            bucket.tokens = min(float(rate.burst), bucket.tokens + (now - bucket.at) * rate.per_s)
            bucket.at = now
            self._buckets[(group, client)] = bucket
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / rate.per_s if rate.per_s > 0 else 3600.0

    def take(self, group: str, client: str) -> None:
        """Let the request through, or raise 429 with `Retry-After`."""
        wait = self.wait_s(group, client)
        if wait > 0:
            raise Problem(429, "Too many requests",
                          f"too many {group} requests from this client; retry later",
                          kind="rate-limited",
                          headers={"Retry-After": str(max(1, math.ceil(wait)))})


def client_address(remote_addr: str | None, forwarded_for: str | None, hops: int) -> str:
    """The client's address: the socket peer, or `hops` back through trusted proxies."""
    if hops > 0 and forwarded_for:
        chain = [part.strip() for part in forwarded_for.split(",") if part.strip()]
        if chain:
            return chain[-min(hops, len(chain))]
    return remote_addr or "unknown"


def group_of(path: str) -> str:
    """The route group a path counts against."""
    if path.startswith("/v1/consents/"):
        return "consent"
    if path in ("/readyz", "/healthz"):
        return "health"
    return "default"
