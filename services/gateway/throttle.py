"""Per-client rate limits: a token bucket per client address and route group, in process.

Groups: `consent` (the public consent and survey links: no token, so the address is all
there is), `family` (the public family booking routes `/v1/family/…`), `health`
(`/readyz`, `/healthz`: each one fans out to every service) and `default` (every other API
route). `/livez` is not limited: it answers from memory, cheaper
than the bucket. A refused request gets 429 problem+json with `Retry-After` (whole seconds).

Each gateway process keeps its own buckets, so a client's allowance grows with the number
of gateway workers; the limits are a guard against one client flooding, not a quota.
The client is the socket peer, unless the peer is a trusted proxy (`KEPU_TRUSTED_PROXIES`,
networks; loopback by default): then `X-Forwarded-For` is read from the right, past every
trusted proxy, to the first address no trusted proxy owns. A count of hops cannot do this:
API traffic crosses one proxy (the ingress), console traffic two (ingress, console).

`KEPU_RATE_LIMITS` overrides groups: `default=500:1000,consent=10:120` (tokens per second
and burst); `off` disables limiting.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from services.gateway.problems import Problem


@dataclass(frozen=True)
class Rate:
    per_s: float  # tokens added per second
    burst: int  # the bucket's size: requests allowed at once


DEFAULT_RATES = {
    "default": Rate(500, 1000),  # above a holiday burst from one load generator (bench)
    # parents open consent and survey links and answer: a class's parents behind one
    # carrier NAT (twice the traffic since surveys joined consent links)
    "consent": Rate(10, 120),
    "health": Rate(10, 30),  # probes and `make up` poll a few times a second
    # public family booking from one address: a holiday rush behind one carrier NAT
    "family": Rate(20, 200),
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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK = "127.0.0.0/8,::1/128"  # KEPU_TRUSTED_PROXIES by default: one origin in one host


def trusted_networks(text: str) -> tuple[Network, ...]:
    """`KEPU_TRUSTED_PROXIES`: comma-separated networks (CIDR; a bare address is one host).
    Parsed once at start, so a typo stops the gateway instead of trusting nothing."""
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"KEPU_TRUSTED_PROXIES: {item!r} is not a network "
                             "(e.g. 10.0.0.0/8 or ::1/128)") from None
    return tuple(networks)


@lru_cache(maxsize=4096)  # the same few peers and proxies ask again and again
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as a proxy writes it: bare, `[v6]:port` or `v4:port`; IPv4-mapped IPv6
    (a dual-stack socket's `::ffff:10.0.0.1`) as the IPv4 address it is. None if not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


_UNIX_SOCKET = ipaddress.ip_address("127.0.0.1")  # what a peer without an address counts as


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
             networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_address(remote_addr: str | None, forwarded_for: str | None,
                   trusted: tuple[Network, ...]) -> str:
    """The client's address. `X-Forwarded-For` counts only when the socket peer is a trusted
    proxy (anyone else could write anything there); then, from the right, each trusted
    proxy's entry is skipped and the first untrusted one is the client: everything left of it
    came from the client and may be forged. All trusted (a call from inside): the left-most.
    No peer address at all is a Unix socket, which only this host can reach: loopback."""
    peer = _ip(remote_addr or "")
    itself = str(peer) if peer is not None else (remote_addr or "unknown")
    if not forwarded_for or not _trusted(peer if remote_addr else _UNIX_SOCKET, trusted):
        return itself
    chain = [part.strip() for part in forwarded_for.split(",") if part.strip()]
    for entry in reversed(chain):
        address = _ip(entry)
        if not _trusted(address, trusted):
            return str(address) if address is not None else entry[:64]
    return str(_ip(chain[0])) if chain else itself


def group_of(path: str) -> str:
    """The route group a path counts against."""
    if path.startswith("/v1/consents/") or (path.startswith("/v1/surveys/")
                                            and not path.startswith("/v1/surveys/teacher/")):
        return "consent"  # parents' links; teachers' survey routes carry a token
    if path.startswith("/v1/family/"):
        return "family"  # public family booking: no token, one-time codes, manage links
    if path in ("/readyz", "/healthz"):
        return "health"
    return "default"
