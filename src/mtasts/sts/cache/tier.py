"""A memory tier in front of a shared or persistent cache (sqlite, Redis, PostgreSQL).

The daemon answers most lookups from entries it read moments ago; a backend round trip
per lookup (sqlite 150 µs, Redis 157 µs, docs/benchmarks.md) is 10-20x the rest of the
answer. :class:`MemoryTier` keeps what it read or wrote in a bounded in-process LRU and
serves it without I/O (:meth:`MemoryTier.peek` is synchronous) under these rules:

1. **Write-through.** ``set`` and ``delete`` go to the backend first, then to the tier;
   a backend that refuses raises as before (the resolver keeps the entry itself).
2. **Bounded staleness against the fleet.** A tier copy is served at most ``ttl``
   seconds (default 60) after it was read from or written to the backend. Another
   daemon sharing the backend may store a newer policy id or purge the domain; this
   daemon sees it within ``ttl``.
3. **Never past the entry's own re-check (RFC 8461 §3.3, §5.1).** Not past
   ``recheck_at``: when the ``_mta-sts`` record is due to be checked again for a new
   policy id, the backend is read first (a fleet peer may have fetched the new policy
   already, which then saves the fetch). Not past the policy's expiry (``max_age``,
   RFC 8461 §3.2): an expired policy is read back and judged by the refresh rules.
4. **Bounded memory.** At most ``max_entries`` domains (LRU); a copy that ends is
   dropped when next looked at.

What the tier cannot see: a change made to the backend by hand (``mtasts cache purge``
without ``--daemon``, a peer's purge) applies within ``ttl``; through the daemon
(``--daemon URL``) it applies at once.
"""

from __future__ import annotations

from collections import OrderedDict

from mtasts.clock import Clock, wall
from mtasts.sts.cache.base import CacheEntry, PolicyCache

DEFAULT_TTL = 60.0
DEFAULT_TIER_SIZE = 100_000


def tier_until(entry: CacheEntry, loaded: float, ttl: float) -> float:
    """Until when (epoch seconds, :func:`mtasts.clock.wall`) a copy loaded at ``loaded``
    may be served."""
    until = min(loaded + ttl, entry.recheck_at)
    expires = entry.expires_at
    if expires is not None and expires > loaded:
        until = min(until, expires)
    return until


class MemoryTier:
    """``PolicyCache`` over ``backend`` with a bounded in-memory copy; see the module."""

    def __init__(
        self,
        backend: PolicyCache,
        *,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_TIER_SIZE,
        clock: Clock = wall,
    ) -> None:
        if max_entries < 1:
            raise ValueError("a memory tier needs room for at least one entry")
        self.backend = backend
        self.url = backend.url
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        #: domain -> (served until, entry)
        self._copies: OrderedDict[str, tuple[float, CacheEntry]] = OrderedDict()

    def peek(self, domain: str) -> CacheEntry | None:
        """The tier's copy if it may still be served (no I/O), else None."""
        copy = self._copies.get(domain)
        if copy is None:
            return None
        if self._clock() >= copy[0]:
            del self._copies[domain]
            return None
        self._copies.move_to_end(domain)
        return copy[1]

    def _keep(self, entry: CacheEntry) -> None:
        self._copies[entry.domain] = (tier_until(entry, self._clock(), self.ttl), entry)
        self._copies.move_to_end(entry.domain)
        while len(self._copies) > self.max_entries:
            self._copies.popitem(last=False)

    async def get(self, domain: str) -> CacheEntry | None:
        entry = self.peek(domain)
        if entry is not None:
            return entry
        entry = await self.backend.get(domain)
        if entry is not None:
            self._keep(entry)
        return entry

    async def set(self, entry: CacheEntry) -> None:
        await self.backend.set(entry)
        self._keep(entry)

    async def delete(self, domain: str) -> None:
        self._copies.pop(domain, None)
        await self.backend.delete(domain)

    async def domains(self) -> list[str]:
        return await self.backend.domains()

    def forget(self, domain: str | None = None) -> None:
        """Drop the tier's copy (all copies): the next read goes to the backend."""
        if domain is None:
            self._copies.clear()
        else:
            self._copies.pop(domain, None)

    async def aclose(self) -> None:
        self._copies.clear()
        await self.backend.aclose()

    def __len__(self) -> int:
        return len(self._copies)
