"""``redis://host:port/db`` -- one cache shared by a fleet of MTAs.

Each domain is one key (``mtasts:sts:<domain>``) holding the JSON entry, with a Redis
expiry of the entry's useful life plus a retention period, so domains nobody looks up
any more disappear on their own.

If Redis goes away, lookups must not fail: the cache logs one warning, serves from a
local memory cache, and tries Redis again after ``retry_after`` seconds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
import redis.exceptions

from mtasts.clock import Clock, monotonic
from mtasts.errors import ConfigError
from mtasts.sts.cache.base import CacheEntry, decode_entry, entry_to_bytes, redacted
from mtasts.sts.cache.memory import MemoryCache

__all__ = ["RedisCache", "redacted"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Keep an entry this long after it stops being useful (seconds).
DEFAULT_RETENTION = 7 * 86400

_OUTAGE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class RedisCache:
    """Entries in Redis; a local :class:`MemoryCache` stands in while Redis is down."""

    def __init__(
        self,
        client: aioredis.Redis,
        url: str,
        *,
        prefix: str = "mtasts:sts:",
        retention: float = DEFAULT_RETENTION,
        retry_after: float = 30.0,
        fallback: MemoryCache | None = None,
        clock: Clock = monotonic,
    ) -> None:
        self._client = client
        self.url = redacted(url)
        self._prefix = prefix
        self._retention = retention
        self._retry_after = retry_after
        #: monotonic: when the store may be tried again after it failed
        self._clock = clock
        self.fallback = fallback or MemoryCache(10_000)
        self._down_until: float | None = None

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 1.0, prefix: str = "mtasts:sts:") -> RedisCache:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        try:  # builds a connection object, connects nothing: options in the URL are checked
            client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"cache URL {redacted(url)!r}: {exc}") from None
        return cls(client, url, prefix=prefix)

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and the local memory cache serves lookups."""
        return self._down_until is not None

    async def _try(self, op: Callable[[], Awaitable[T]], fallback: Callable[[], Awaitable[T]]) -> T:
        if self._down_until is not None and self._clock() < self._down_until:
            return await fallback()
        try:
            result = await op()
        except _OUTAGE as exc:
            if self._down_until is None:
                log.warning(
                    "policy cache %s is unreachable (%s); using a local memory cache "
                    "until it is back",
                    self.url,
                    exc,
                )
            self._down_until = self._clock() + self._retry_after
            return await fallback()
        if self._down_until is not None:
            log.warning("policy cache %s is reachable again", self.url)
            self._down_until = None
        return result

    def _key(self, domain: str) -> str:
        return self._prefix + domain

    async def get(self, domain: str) -> CacheEntry | None:
        async def op() -> CacheEntry | None:
            data = await self._client.get(self._key(domain))
            if data is None:
                return None
            return decode_entry(data, domain=domain, cache_url=self.url)

        return await self._try(op, lambda: self.fallback.get(domain))

    async def set(self, entry: CacheEntry) -> None:
        # Useful life, measured from the entry's own clock so injected clocks work too.
        ends = max(entry.expires_at or 0.0, entry.recheck_at)
        seconds = math.ceil(max(ends - entry.checked_at, 0.0) + self._retention)

        async def op() -> None:
            await self._client.set(self._key(entry.domain), entry_to_bytes(entry), ex=seconds)

        await self._try(op, lambda: self.fallback.set(entry))

    async def delete(self, domain: str) -> None:
        async def op() -> None:
            await self._client.delete(self._key(domain))

        await self._try(op, lambda: self.fallback.delete(domain))

    async def domains(self) -> list[str]:
        async def op() -> list[str]:
            found: list[str] = []
            async for key in self._client.scan_iter(match=self._prefix + "*", count=1000):
                text = key.decode() if isinstance(key, bytes) else str(key)
                found.append(text[len(self._prefix) :])
            return sorted(found)

        return await self._try(op, self.fallback.domains)

    async def aclose(self) -> None:
        await self._client.aclose()
        await self.fallback.aclose()
