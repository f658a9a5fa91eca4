"""One contract every policy cache backend passes: memory, SQLite, Redis (a real server)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from tests.pg import PG_URL, fresh_schema, require_pg

from mtasts.errors import ConfigError, Notice
from mtasts.results import ResultType
from mtasts.sts.cache import MemoryCache, PolicyCache, open_cache
from mtasts.sts.cache.base import entry_from_bytes, entry_to_bytes
from mtasts.sts.cache.postgres import PostgresCache
from mtasts.sts.cache.redis import RedisCache, redacted
from mtasts.sts.cache.sqlite import SqliteCache
from mtasts.sts.cache.tier import MemoryTier
from mtasts.sts.policy import parse_policy
from mtasts.sts.refresh import CacheEntry, after_fetch_failed, after_fetch_ok

REDIS_URL = os.environ.get("MTASTS_TEST_REDIS", "redis://127.0.0.1:6379/0")
POLICY = (
    "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\n"
    "max_age: 86400\r\n"
)
T0 = 1_700_000_000.0


def redis_or_skip() -> None:
    """Skip (outside CI) or fail (under CI) when no Redis server answers."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return
    except OSError:
        if os.environ.get("CI"):
            pytest.fail("CI must provide a Redis server on 127.0.0.1:6379")
        pytest.skip("no Redis on 127.0.0.1:6379: run `redis-server --daemonize yes` to test it")


def full_entry(domain: str = "example.com") -> CacheEntry:
    """An entry using every field: policy, TXT error, failure state."""
    seen = CacheEntry(domain, T0, T0 + 300, txt_id="20240101")
    entry = after_fetch_ok(seen, "20240101", parse_policy(POLICY), POLICY, T0)
    return after_fetch_failed(
        entry,
        "20240102",
        Notice("fetch.status", "GET https://mta-sts.example.com/... answered HTTP 500"),
        ResultType.STS_POLICY_FETCH_ERROR,
        T0 + 60,
    )


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres", "tier-sqlite"])
async def cache(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PolicyCache]:
    kind = request.param
    async with contextlib.AsyncExitStack() as stack:
        if kind == "memory":
            backend: PolicyCache = await open_cache("memory:")
        elif kind == "sqlite":
            backend = await open_cache(f"sqlite:///{tmp_path}/cache.db")
        elif kind == "tier-sqlite":  # what Resolver.open puts in front of a backend
            backend = MemoryTier(await open_cache(f"sqlite:///{tmp_path}/cache.db"))
        elif kind == "redis":
            redis_or_skip()
            client = aioredis.Redis.from_url(REDIS_URL)
            backend = RedisCache(client, REDIS_URL, prefix=f"mtasts-test:{uuid.uuid4().hex}:")
        else:
            schema = await stack.enter_async_context(fresh_schema("c"))
            backend = await open_cache(f"{PG_URL}?search_path={schema}")
            assert isinstance(backend, PostgresCache)
            assert not backend.degraded
        yield backend
        for domain in await backend.domains():
            await backend.delete(domain)
        await backend.aclose()


async def test_missing_domain_is_none(cache: PolicyCache) -> None:
    """get() of a domain never stored returns None."""
    assert await cache.get("nothing.example") is None


async def test_round_trip_keeps_every_field(cache: PolicyCache) -> None:
    """What is stored comes back equal: id, policy, raw text, times, failure state."""
    entry = full_entry()
    await cache.set(entry)
    got = await cache.get("example.com")
    assert got == entry
    assert got is not None
    assert got.raw_text == POLICY
    assert got.failure_type is ResultType.STS_POLICY_FETCH_ERROR


async def test_negative_entry_round_trips(cache: PolicyCache) -> None:
    """A "no policy" entry (no policy, a TXT reason) is stored too (negative caching)."""
    entry = CacheEntry("none.example", T0, T0 + 60, txt_error=Notice("sts-record.absent", "x"))
    await cache.set(entry)
    assert await cache.get("none.example") == entry


async def test_set_replaces_and_delete_forgets(cache: PolicyCache) -> None:
    """A second set() replaces the first; delete() removes; domains() lists what is kept."""
    await cache.set(CacheEntry("a.example", T0, T0 + 1))
    await cache.set(CacheEntry("a.example", T0, T0 + 2))
    await cache.set(CacheEntry("b.example", T0, T0 + 3))
    got = await cache.get("a.example")
    assert got is not None
    assert got.recheck_at == T0 + 2
    assert await cache.domains() == ["a.example", "b.example"]
    await cache.delete("a.example")
    await cache.delete("never.example")
    assert await cache.get("a.example") is None
    assert await cache.domains() == ["b.example"]


async def test_concurrent_writers_do_not_lose_entries(cache: PolicyCache) -> None:
    """Many concurrent set() calls for different domains all land."""
    names = [f"d{i}.example" for i in range(50)]
    await asyncio.gather(*(cache.set(CacheEntry(n, T0, T0 + 1)) for n in names))
    assert sorted(await cache.domains()) == sorted(names)


async def test_backend_satisfies_the_protocol(cache: PolicyCache) -> None:
    assert isinstance(cache, PolicyCache)
    assert cache.url


# --- backend specifics -------------------------------------------------------------------


async def test_memory_cache_evicts_least_recently_used() -> None:
    """The memory cache is bounded: the entry used longest ago goes first."""
    cache = MemoryCache(max_entries=2)
    await cache.set(CacheEntry("a.example", T0, T0))
    await cache.set(CacheEntry("b.example", T0, T0))
    await cache.get("a.example")
    await cache.set(CacheEntry("c.example", T0, T0))
    assert await cache.domains() == ["a.example", "c.example"]


async def test_sqlite_cache_survives_a_restart(tmp_path: Path) -> None:
    """sqlite:/// is persistent: a new process (new connection) sees the entries."""
    url = f"sqlite:///{tmp_path}/persist.db"
    first = await open_cache(url)
    await first.set(full_entry())
    await first.aclose()
    second = await open_cache(url)
    assert isinstance(second, SqliteCache)
    assert await second.get("example.com") == full_entry()
    await second.aclose()


@pytest.mark.parametrize(
    "url",
    [
        "memcached://127.0.0.1",  # defect: unknown scheme
        "sqlite://relative.db",  # defect: two slashes, no path
        "memory:?max_entries=zero",  # defect: size not a number
        "sqlite:///x.db?timeout=soon",  # defect: not seconds
        "sqlite:///x.db?threads=4",  # defect: not an option of ours
    ],
)
async def test_bad_cache_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        await open_cache(url)


def test_stored_format_is_json_with_the_raw_policy_text() -> None:
    """The stored bytes are JSON holding the raw policy, re-parsed on read."""
    data = entry_to_bytes(full_entry())
    assert b'"raw_text":"version: STSv1\\r\\nmode: enforce' in data
    assert entry_from_bytes(data) == full_entry()


def test_redis_url_password_is_redacted() -> None:
    assert redacted("redis://:s3cret@cache.example:6380/1") == "redis://:***@cache.example:6380/1"
    assert redacted("redis://u:pw@h/0") == "redis://u:***@h/0"
    assert redacted("redis://h:6379/0") == "redis://h:6379/0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_redis_outage_degrades_to_memory_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Redis that goes away mid-run: lookups keep working from memory, one warning."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install redis-server")
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    port = _free_port()
    server = await asyncio.create_subprocess_exec(
        *(binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        stdout=asyncio.subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = aioredis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        for _ in range(100):
            try:
                await client.ping()
                break
            except Exception:
                await asyncio.sleep(0.05)
        cache = RedisCache(client, url, retry_after=0.2)
        await cache.set(full_entry("before.example"))
        assert await cache.get("before.example") == full_entry("before.example")
        server.terminate()
        await server.wait()
        with caplog.at_level("WARNING", logger="mtasts.sts.cache.redis"):
            await cache.set(full_entry("during.example"))
            assert cache.degraded
            assert await cache.get("during.example") == full_entry("during.example")
            assert await cache.get("before.example") is None
        warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1
        await cache.aclose()
    finally:
        if server.returncode is None:
            server.terminate()
            await server.wait()


# --- corrupt stored entries ----------------------------------------------------------------

GARBAGE = [
    b"not json at all",  # defect: not JSON
    b"[1, 2, 3]",  # defect: JSON, but not an object
    b'{"v": 1}',  # defect: required fields missing
    b'{"v":1,"domain":"example.com","checked_at":"soon","recheck_at":1}',  # defect: bad time
    # defect: the stored policy text no longer parses (e.g. written by another version)
    b'{"v":1,"domain":"example.com","checked_at":1,"recheck_at":2,"raw_text":"mode: x"}',
    b'{"v":1,"domain":"example.com","checked_at":1,"recheck_at":2,"txt_error":[1]}',  # defect
    # defect: a valid entry, but for another domain (a key collision or a manual edit)
    entry_to_bytes(full_entry("other.example")),
]


async def _store_raw(cache: PolicyCache, domain: str, data: bytes) -> bool:
    """Write ``data`` as the stored value of ``domain`` behind the backend's back."""
    if isinstance(cache, RedisCache):
        await cache._client.set(cache._key(domain), data)
        return True
    if isinstance(cache, PostgresCache):
        async with cache._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO mtasts_sts_policy_cache (domain, entry) VALUES ($1, $2) "
                "ON CONFLICT (domain) DO UPDATE SET entry = EXCLUDED.entry",
                domain,
                data,
            )
        return True
    if isinstance(cache, SqliteCache):
        await cache._db.execute(
            "INSERT OR REPLACE INTO sts_policy_cache (domain, entry) VALUES (?, ?)", (domain, data)
        )
        await cache._db.commit()
        return True
    return False  # the memory cache stores values, not bytes


@pytest.mark.parametrize("cache", ["sqlite", "redis", "postgres"], indirect=True)
@pytest.mark.parametrize("data", GARBAGE)
async def test_corrupt_stored_entry_is_a_miss_with_a_warning(
    cache: PolicyCache, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A stored value that does not decode is treated as absent, with a warning; it never
    makes get() raise (a lookup must not crash on one bad row)."""
    assert await _store_raw(cache, "example.com", data)
    with caplog.at_level("WARNING", logger="mtasts.sts.cache"):
        assert await cache.get("example.com") is None
    assert any("example.com" in r.getMessage() for r in caplog.records)
    await cache.set(full_entry())  # the bad value is simply replaced
    assert await cache.get("example.com") == full_entry()


# --- PostgreSQL specifics ------------------------------------------------------------------


async def test_postgres_cache_url_opens_a_postgres_cache() -> None:
    """defect: postgresql:// was documented but open_cache refused it (the daemon failed)."""
    async with fresh_schema("c") as schema:
        cache = await open_cache(f"{PG_URL}?search_path={schema}&max_size=2&timeout=3")
        assert isinstance(cache, PostgresCache)
        await cache.set(full_entry())
        await cache.aclose()
        again = await open_cache(f"{PG_URL}?search_path={schema}")  # persistent
        assert await again.get("example.com") == full_entry()
        await again.aclose()


async def test_postgres_cache_lives_beside_pmsr_table() -> None:
    """pmsr's own sts_policy_cache table in the same database is neither used nor touched."""
    async with fresh_schema("c") as schema:
        import asyncpg

        conn = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
        await conn.execute(
            "CREATE TABLE sts_policy_cache (id serial primary key, domain text, ts integer, "
            "pol_id text, pol_body jsonb)"
        )
        await conn.execute("INSERT INTO sts_policy_cache (domain, ts) VALUES ('pmsr.example', 1)")
        cache = await open_cache(f"{PG_URL}?search_path={schema}")
        await cache.set(full_entry())
        assert await cache.get("example.com") == full_entry()
        assert await conn.fetchval("SELECT count(*) FROM sts_policy_cache") == 1
        await cache.aclose()
        await conn.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("postgresql://postgres@127.0.0.1:5432/no_such_db_mtasts", "refused"),
        ("postgresql://postgres@127.0.0.1:5432/test?max_size=many", "not a number"),
        ("postgresql://postgres@127.0.0.1:5432/test?timeout=0", "out of range"),
    ],
)
async def test_postgres_cache_url_errors_are_config_errors(url: str, says: str) -> None:
    require_pg()
    with pytest.raises(ConfigError, match=says):
        await open_cache(url)


async def test_postgres_outage_degrades_to_memory_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unreachable at start or later: lookups keep working from memory, one warning, and
    the password never reaches the log."""
    url = f"postgresql://mtasts:s3cret@127.0.0.1:{_free_port()}/test?timeout=1"
    with caplog.at_level("WARNING", logger="mtasts.sts.cache.postgres"):
        cache = await open_cache(url)
        assert isinstance(cache, PostgresCache)
        assert cache.degraded
        await cache.set(full_entry())
        assert await cache.get("example.com") == full_entry()
        assert await cache.domains() == ["example.com"]
        await cache.aclose()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0]
    assert "s3cret" not in warnings[0]


async def test_postgres_backend_killed_mid_run_costs_no_lookup() -> None:
    """pg_terminate_backend on the pool's connections: the next operations still answer."""
    async with fresh_schema("c") as schema:
        import asyncpg

        cache = await open_cache(f"{PG_URL}?search_path={schema}&application_name=mtasts-kill")
        await cache.set(full_entry("before.example"))
        admin = await asyncpg.connect(PG_URL)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'mtasts-kill'"
        )
        await admin.close()
        await cache.set(full_entry("during.example"))
        assert await cache.get("during.example") == full_entry("during.example")
        await cache.aclose()
