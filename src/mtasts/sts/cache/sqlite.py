"""``sqlite:///path`` -- a persistent cache for one machine.

We use aiosqlite (the standard ``sqlite3`` module on a worker thread) directly rather
than SQLAlchemy: the cache is one table read by primary key on the MTA's hot path, so a
query builder adds cost and no portability (the shared fleet cache is Redis, not SQL).
WAL mode lets several processes on the machine read while one writes.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import aiosqlite

from mtasts.store.sqliteopen import connect_sqlite
from mtasts.sts.cache.base import CacheEntry, decode_entry, entry_to_bytes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sts_policy_cache (
    domain TEXT PRIMARY KEY NOT NULL,
    entry BLOB NOT NULL
)
"""


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL (SQLAlchemy's form)."""
    prefix = "sqlite:///"
    path = url.partition("?")[0]
    if not path.startswith(prefix) or len(path) == len(prefix):
        raise ValueError(f"{url!r} is not a sqlite:///path URL")
    return path[len(prefix) :]


def sqlite_timeout(url: str) -> float:
    """``?timeout=SECONDS`` of the URL: how long to wait for another writer's lock (5)."""
    query = parse_qs(url.partition("?")[2])
    unknown = sorted(set(query) - {"timeout"})
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} (only timeout=SECONDS)")
    value = float(query.get("timeout", ["5"])[-1])
    if not value > 0:
        raise ValueError("timeout must be a positive number of seconds")
    return value


class SqliteCache:
    """Entries as JSON blobs keyed by domain in one SQLite table."""

    def __init__(self, connection: aiosqlite.Connection, url: str) -> None:
        self._db = connection
        self.url = url

    @classmethod
    async def open(cls, url: str) -> SqliteCache:
        db = await connect_sqlite(sqlite_path(url), what="cache", timeout=sqlite_timeout(url))
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute(_SCHEMA)
            await db.commit()
        except BaseException:
            await db.close()
            raise
        return cls(db, url)

    async def get(self, domain: str) -> CacheEntry | None:
        async with self._db.execute(
            "SELECT entry FROM sts_policy_cache WHERE domain = ?", (domain,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return decode_entry(row[0], domain=domain, cache_url=self.url)

    async def set(self, entry: CacheEntry) -> None:
        await self._db.execute(
            "INSERT INTO sts_policy_cache (domain, entry) VALUES (?, ?) "
            "ON CONFLICT (domain) DO UPDATE SET entry = excluded.entry",
            (entry.domain, entry_to_bytes(entry)),
        )
        await self._db.commit()

    async def delete(self, domain: str) -> None:
        await self._db.execute("DELETE FROM sts_policy_cache WHERE domain = ?", (domain,))
        await self._db.commit()

    async def domains(self) -> list[str]:
        async with self._db.execute("SELECT domain FROM sts_policy_cache ORDER BY domain") as cur:
            return [row[0] for row in await cur.fetchall()]

    async def aclose(self) -> None:
        await self._db.close()
