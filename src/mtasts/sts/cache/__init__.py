"""Policy caches behind one protocol, chosen by URL.

``memory:`` (default; optionally ``memory:?max_entries=N``), ``sqlite:///path``
(persistent, one machine; ``?timeout=SECONDS`` to wait for a lock), ``redis://host:port/db``
or ``rediss://`` (shared by a fleet; redis-py's options in the query), or
``postgresql://user@host/db`` (shared by a fleet on PostgreSQL; see
:mod:`mtasts.sts.cache.postgres` for its query options).
"""

from __future__ import annotations

import sqlite3
from urllib.parse import parse_qs, urlsplit

from mtasts.errors import ConfigError, MissingDependency
from mtasts.sts.cache.base import CacheEntry, PolicyCache, redacted
from mtasts.sts.cache.memory import DEFAULT_SIZE, MemoryCache

__all__ = ["CacheEntry", "MemoryCache", "PolicyCache", "open_cache"]


def require_shared(url: str) -> None:
    """A command outside the daemon needs a cache it can open: not ``memory:``."""
    if url.split(":", 1)[0].lower() == "memory":
        raise ConfigError(
            "the memory: cache lives inside the daemon: pass --daemon http://HOST:PORT "
            "(its [daemon] metrics address), or configure a shared [cache] url",
            code="config.cache-url",
        )


async def open_cache(url: str = "memory:") -> PolicyCache:
    """Open the cache named by ``url``; raises ConfigError for an unknown or bad URL."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        query = parse_qs(urlsplit(url).query)
        try:
            size = int(query.get("max_entries", [str(DEFAULT_SIZE)])[0])
            return MemoryCache(size)
        except ValueError as exc:
            raise ConfigError(f"cache URL {url!r}: max_entries must be a positive number") from exc
    if scheme == "sqlite":
        from mtasts.sts.cache.sqlite import SqliteCache, sqlite_path, sqlite_timeout

        try:
            sqlite_path(url)
        except ValueError as exc:
            raise ConfigError(
                f"cache URL {url!r}: write sqlite:///relative/path or sqlite:////absolute/path"
            ) from exc
        try:
            sqlite_timeout(url)
        except ValueError as exc:
            raise ConfigError(f"cache URL {url!r}: {exc}") from None
        try:
            return await SqliteCache.open(url)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cache URL {url!r}: cannot open the database: {exc}") from exc
    if scheme in ("redis", "rediss", "unix"):
        try:
            from mtasts.sts.cache.redis import RedisCache
        except ImportError:
            raise MissingDependency(
                f"the cache {redacted(url)}", "redis", module="redis-py"
            ) from None
        return RedisCache.from_url(url)
    if scheme.split("+", 1)[0] in ("postgresql", "postgres"):
        try:
            from mtasts.sts.cache.postgres import PostgresCache
        except ImportError:
            raise MissingDependency(
                f"the cache {redacted(url)}", "postgres", module="asyncpg"
            ) from None
        return await PostgresCache.open(url)
    raise ConfigError(
        f"cache URL {redacted(url)!r} is not supported; use memory:, sqlite:///path, "
        "redis://host:port/db or postgresql://user@host/db",
        code="config.cache-url",
    )
