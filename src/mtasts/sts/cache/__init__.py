"""Policy caches behind one protocol, chosen by URL.

``memory:`` (default; optionally ``memory:?max_entries=N``), ``sqlite:///path``
(persistent, one machine), ``redis://host:port/db`` or ``rediss://`` (shared by a fleet).
"""

from __future__ import annotations

import sqlite3
from urllib.parse import parse_qs, urlsplit

from mtasts.errors import ConfigError
from mtasts.sts.cache.base import CacheEntry, PolicyCache
from mtasts.sts.cache.memory import DEFAULT_SIZE, MemoryCache

__all__ = ["CacheEntry", "MemoryCache", "PolicyCache", "open_cache"]


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
        from mtasts.sts.cache.sqlite import SqliteCache, sqlite_path

        try:
            sqlite_path(url)
        except ValueError as exc:
            raise ConfigError(
                f"cache URL {url!r}: write sqlite:///relative/path or sqlite:////absolute/path"
            ) from exc
        try:
            return await SqliteCache.open(url)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cache URL {url!r}: cannot open the database: {exc}") from exc
    if scheme in ("redis", "rediss", "unix"):
        from mtasts.sts.cache.redis import RedisCache

        return RedisCache.from_url(url)
    raise ConfigError(
        f"cache URL {url!r} is not supported; use memory:, sqlite:///path or redis://host:port/db",
        code="config.cache-url",
    )
