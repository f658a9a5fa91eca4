"""``postgresql://user@host/db`` -- one cache shared by a fleet, for fleets that run on
PostgreSQL (as postfix-mta-sts-resolver's ``postgres`` cache does).

asyncpg directly (as the TLS-RPT store does), a connection pool, one table
``mtasts_sts_policy_cache (domain PRIMARY KEY, entry BYTEA)`` holding the same JSON entry
as the other backends. The table name is ours, so it lives beside pmsr's own
``sts_policy_cache`` in the same database without touching it.

The URL's query may carry pool and connection settings, under asyncpg's names:
``min_size`` (1), ``max_size`` (10), ``max_queries``, ``max_inactive_connection_lifetime``,
``timeout`` (seconds to connect and to get a pooled connection, 5), ``command_timeout``
(5), ``statement_cache_size``, ``max_cached_statement_lifetime``,
``max_cacheable_statement_size``. Every other query parameter is asyncpg's DSN (libpq
names such as ``sslmode``; unknown ones become server settings, e.g. ``search_path``).

If PostgreSQL goes away, lookups must not fail: like the Redis cache, this one logs one
warning, serves from a local memory cache, and tries PostgreSQL again after
``retry_after`` seconds. A URL that PostgreSQL refuses (bad password, no such database) is
a configuration error at start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]

from mtasts.clock import Clock, monotonic
from mtasts.errors import ConfigError
from mtasts.sts.cache.base import CacheEntry, decode_entry, entry_to_bytes, redacted
from mtasts.sts.cache.memory import MemoryCache

log = logging.getLogger(__name__)

T = TypeVar("T")

TABLE = "mtasts_sts_policy_cache"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS mtasts_sts_policy_cache "
    "(domain TEXT PRIMARY KEY, entry BYTEA NOT NULL)"
)
_GET = "SELECT entry FROM mtasts_sts_policy_cache WHERE domain = $1"
_SET = (
    "INSERT INTO mtasts_sts_policy_cache (domain, entry) VALUES ($1, $2) "
    "ON CONFLICT (domain) DO UPDATE SET entry = EXCLUDED.entry"
)
_DELETE = "DELETE FROM mtasts_sts_policy_cache WHERE domain = $1"
_DOMAINS = "SELECT domain FROM mtasts_sts_policy_cache ORDER BY domain"

#: URL query parameters that are pool / connection settings, not DSN: name -> type
POOL_OPTIONS: dict[str, type[int] | type[float]] = {
    "min_size": int,
    "max_size": int,
    "max_queries": int,
    "max_inactive_connection_lifetime": float,
    "timeout": float,
    "command_timeout": float,
    "statement_cache_size": int,
    "max_cached_statement_lifetime": float,
    "max_cacheable_statement_size": int,
}
_DEFAULTS: dict[str, Any] = {"min_size": 1, "max_size": 10, "timeout": 5.0, "command_timeout": 5.0}

# Refusals that no retry will cure: the URL is wrong, not the network.
_REFUSED = (
    asyncpg.InvalidAuthorizationSpecificationError,  # bad password, no such role
    asyncpg.InvalidCatalogNameError,  # no such database
    asyncpg.InsufficientPrivilegeError,  # may not create the table
    asyncpg.InvalidParameterValueError,  # a bad server setting in the URL
)
# What a server that goes away makes asyncpg raise; InternalClientError ("cannot switch
# to state ...") comes from a connection the server terminated in mid-operation.
_OUTAGE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def split_url(url: str) -> tuple[str, dict[str, Any]]:
    """``(dsn, pool options)`` of a cache URL; ConfigError for a bad option value."""
    parts = urlsplit(url)
    if parts.scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ConfigError(f"cache URL {redacted(url)!r} is not postgresql://...")
    options: dict[str, Any] = dict(_DEFAULTS)
    dsn_query: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        kind = POOL_OPTIONS.get(key)
        if kind is None:
            dsn_query.append((key, value))
            continue
        try:
            number = kind(value)
        except ValueError:
            raise ConfigError(
                f"cache URL {redacted(url)!r}: {key}={value!r} is not a number"
            ) from None
        if number < 0 or (number == 0 and key in ("max_size", "timeout")):
            raise ConfigError(f"cache URL {redacted(url)!r}: {key}={value!r} is out of range")
        options[key] = number
    if options["min_size"] > options["max_size"]:
        options["min_size"] = options["max_size"]
    dsn = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(dsn_query)))
    return dsn, options


class PostgresCache:
    """Entries as JSON in one PostgreSQL table; a local :class:`MemoryCache` stands in
    while PostgreSQL is down."""

    def __init__(
        self,
        url: str,
        *,
        retry_after: float = 30.0,
        fallback: MemoryCache | None = None,
        clock: Clock = monotonic,
    ) -> None:
        self.url = redacted(url)
        self._dsn, self._options = split_url(url)
        self._timeout = float(self._options["timeout"])
        self._retry_after = retry_after
        #: monotonic: when the store may be tried again after it failed
        self._clock = clock
        self.fallback = fallback or MemoryCache(10_000)
        self._pool: Any = None
        self._down_until: float | None = None
        self._opening: asyncio.Lock | None = None

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> PostgresCache:
        """Connect and create the table; ConfigError if PostgreSQL refuses the URL.

        An unreachable server is not an error: the daemon starts on the memory fallback
        and keeps trying, as it does when the server goes away later.
        """
        cache = cls(url, **kwargs)
        try:
            await cache._connect()
        except _REFUSED as exc:
            raise ConfigError(f"cache URL {cache.url!r}: PostgreSQL refused it: {exc}") from None
        except (ValueError, TypeError) as exc:  # asyncpg's DSN parser
            raise ConfigError(f"cache URL {cache.url!r} is not a valid DSN: {exc}") from None
        except _OUTAGE as exc:
            cache._outage(exc)
        return cache

    @property
    def degraded(self) -> bool:
        """True while PostgreSQL is unreachable and the local memory cache serves lookups."""
        return self._down_until is not None

    async def _connect(self) -> Any:
        if self._pool is not None:
            return self._pool
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                options = dict(self._options)
                pool = await asyncio.wait_for(
                    asyncpg.create_pool(self._dsn, **options), self._timeout * 2
                )
                try:
                    async with pool.acquire(timeout=self._timeout) as conn:
                        await conn.execute(_SCHEMA)
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    def _outage(self, exc: BaseException) -> None:
        if self._down_until is None:
            log.warning(
                "policy cache %s is unreachable (%s: %s); using a local memory cache "
                "until it is back",
                self.url,
                type(exc).__name__,
                exc,
            )
        self._down_until = self._clock() + self._retry_after

    async def _try(
        self, op: Callable[[Any], Awaitable[T]], fallback: Callable[[], Awaitable[T]]
    ) -> T:
        if self._down_until is not None and self._clock() < self._down_until:
            return await fallback()
        try:
            pool = await self._connect()
            async with pool.acquire(timeout=self._timeout) as conn:
                result = await op(conn)
        except _OUTAGE as exc:
            self._outage(exc)
            return await fallback()
        if self._down_until is not None:
            log.warning("policy cache %s is reachable again", self.url)
            self._down_until = None
        return result

    async def get(self, domain: str) -> CacheEntry | None:
        async def op(conn: Any) -> CacheEntry | None:
            data = await conn.fetchval(_GET, domain)
            if data is None:
                return None
            return decode_entry(bytes(data), domain=domain, cache_url=self.url)

        return await self._try(op, lambda: self.fallback.get(domain))

    async def set(self, entry: CacheEntry) -> None:
        async def op(conn: Any) -> None:
            await conn.execute(_SET, entry.domain, entry_to_bytes(entry))

        await self._try(op, lambda: self.fallback.set(entry))

    async def delete(self, domain: str) -> None:
        async def op(conn: Any) -> None:
            await conn.execute(_DELETE, domain)

        await self._try(op, lambda: self.fallback.delete(domain))

    async def domains(self) -> list[str]:
        async def op(conn: Any) -> list[str]:
            rows = await conn.fetch(_DOMAINS)
            return [str(r["domain"]) for r in rows]

        return await self._try(op, self.fallback.domains)

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except (TimeoutError, *_OUTAGE):
                pool.terminate()
        await self.fallback.aclose()
