"""Per-client limits of the policy host: connections at once and new connections a second.

A sender fetches a policy once per ``max_age`` or so; a client that holds many connections
or opens them without pause is an attack (or a broken proxy), not a sender. One client is a
source IPv4 address, or an IPv6 /64 (one subscriber's allocation, RFC 6177; counting single
IPv6 addresses would let one host use 2^64 of them).

Pure: the clock is passed in as ``now`` (seconds, monotonic). The table of clients is
bounded: a client with no open connection and a full bucket carries no state worth keeping.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

#: clients remembered beyond those with open connections; older idle ones are forgotten
MAX_IDLE_CLIENTS = 10_000


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """``max_open`` connections at once (0 = no limit); new connections at ``rate`` a second
    sustained with bursts of ``burst`` (``rate`` 0 = no limit)."""

    max_open: int = 16
    rate: float = 10.0
    burst: int = 50

    def __post_init__(self) -> None:
        if self.max_open < 0 or self.rate < 0 or self.burst < 1:
            raise ValueError("client limits must be non-negative (burst at least 1)")


def client_key(address: str) -> str:
    """The client an address belongs to: IPv4 itself, IPv6 its /64 (mapped IPv4 unwrapped)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address  # a unix socket path or an empty name: one client
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(slots=True)
class _Client:
    open: int
    tokens: float
    stamp: float


class ClientTable:
    """Admits or refuses each new connection of a client; ``release`` when it ends."""

    def __init__(self, limits: ClientLimits) -> None:
        self.limits = limits
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._with_open = 0  # clients with at least one open connection

    def __len__(self) -> int:
        return len(self._clients)

    def admit(self, key: str, now: float) -> str | None:
        """None when the connection may proceed (and is counted), else why it may not."""
        limits = self.limits
        client = self._clients.get(key)
        if client is None:
            client = _Client(open=0, tokens=float(limits.burst), stamp=now)
            self._clients[key] = client
            self._forget_idle()
        else:
            self._clients.move_to_end(key)
            if limits.rate:
                elapsed = max(0.0, now - client.stamp)
                client.tokens = min(float(limits.burst), client.tokens + elapsed * limits.rate)
            client.stamp = now
        if limits.max_open and client.open >= limits.max_open:
            return f"more than {limits.max_open} connections at once"
        if limits.rate:
            if client.tokens < 1.0:
                return f"more than {limits.rate:g} new connections a second"
            client.tokens -= 1.0
        client.open += 1
        self._with_open += client.open == 1
        return None

    def release(self, key: str) -> None:
        client = self._clients.get(key)
        if client is not None and client.open > 0:
            client.open -= 1
            self._with_open -= client.open == 0

    def _forget_idle(self) -> None:
        """Forget the least recently seen clients without open connections beyond the bound.

        A forgotten client starts again with a full bucket, so only clients idle for the
        longest are forgotten, and only when MAX_IDLE_CLIENTS others were seen since.
        """
        while len(self._clients) - self._with_open > MAX_IDLE_CLIENTS:
            # the oldest idle client; those ahead of it hold connections (at most the cap)
            oldest = next(key for key, c in self._clients.items() if not c.open)
            del self._clients[oldest]
