"""--pmsr-config carries every postfix-mta-sts-resolver cache setting over, or refuses it.

The mapping is a table (pure); the URLs it produces are then opened by the real backends
(SQLite, Redis, PostgreSQL), so "carried over" means "the cache mtasts opens uses it".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mtasts.errors import ConfigError
from mtasts.postfix.pmsr import PG_POOL_OPTIONS, from_pmsr
from mtasts.sts.cache import open_cache

CARRIED = [
    # (pmsr cache section, mtasts cache URL)
    # defect: cache_size was noted and dropped (a 100,000-entry cache instead of 500)
    ({"type": "internal", "options": {"cache_size": 500}}, "memory:?max_entries=500"),
    ({"type": "internal"}, "memory:?max_entries=10000"),  # pmsr's default size
    (
        {"type": "sqlite", "options": {"filename": "/var/lib/m/c.db", "timeout": 7}},
        "sqlite:////var/lib/m/c.mtasts.db?timeout=7",
    ),
    # defect: a password given beside the URL was dropped (every cache call failed auth)
    (
        {"type": "redis", "options": {"url": "redis://r:6379/0", "password": "p@ss", "db": 2}},
        "redis://:p%40ss@r:6379/2",
    ),
    (
        {
            "type": "redis",
            "options": {"url": "redis://r/0", "socket_timeout": 5, "retry_on_timeout": True},
        },
        "redis://r/0?retry_on_timeout=true&socket_timeout=5",
    ),
    # defect: timeout and pool options were noted and dropped
    (
        {
            "type": "postgres",
            "options": {
                "dsn": "postgresql://u@h/db",
                "timeout": 3,
                "max_size": 20,
                "ssl": True,
                "server_settings": {"application_name": "mta"},
            },
        },
        "postgresql://u@h/db?max_size=20&application_name=mta&sslmode=require&timeout=3",
    ),
    (
        {
            "type": "postgres",
            "options": {"dsn": "postgresql://h/db", "user": "mta", "password": "s/3", "port": 5433},
        },
        "postgresql://mta:s%2F3@h:5433/db",
    ),
]


@pytest.mark.parametrize(("cache", "url"), CARRIED)
def test_pmsr_cache_settings_are_carried_into_the_url(cache: dict[str, Any], url: str) -> None:
    assert from_pmsr({"cache": cache}).cache_url == url


REFUSED = [
    # (pmsr cache section, the option named in the error)
    ({"type": "internal", "options": {"cache_size": 10, "ttl": 5}}, "ttl"),
    ({"type": "sqlite", "options": {"filename": "/x.db", "journal": "wal"}}, "journal"),
    (
        {"type": "redis", "options": {"url": "redis://r/0", "connection_pool": {}}},
        "connection_pool",
    ),
    ({"type": "redis", "options": {"url": "redis://r/0", "socket_timeout": [1]}}, "socket_timeout"),
    ({"type": "postgres", "options": {"dsn": "postgresql://h/d", "init": "f"}}, "init"),
    ({"type": "postgres", "options": {"dsn": "postgresql://h/d", "ssl": "maybe"}}, "ssl"),
    (
        {"type": "postgres", "options": {"dsn": "postgresql://h/d", "direct_tls": True}},
        "direct_tls",
    ),
]


@pytest.mark.parametrize(("cache", "option"), REFUSED)
def test_pmsr_cache_settings_that_cannot_be_carried_refuse_to_start(
    cache: dict[str, Any], option: str
) -> None:
    """Loudly: the daemon exits with this error instead of running on another cache."""
    with pytest.raises(ConfigError, match=f"cache.options.{option}"):
        from_pmsr({"cache": cache})


def test_pool_option_names_match_the_postgres_cache() -> None:
    from mtasts.sts.cache.postgres import POOL_OPTIONS

    assert set(POOL_OPTIONS) == PG_POOL_OPTIONS


async def test_carried_sqlite_url_opens_with_its_timeout(tmp_path: Path) -> None:
    url = from_pmsr(
        {"cache": {"type": "sqlite", "options": {"filename": str(tmp_path / "c.db"), "timeout": 2}}}
    ).cache_url
    assert url is not None
    cache = await open_cache(url)
    assert await cache.domains() == []
    await cache.aclose()
    assert (tmp_path / "c.mtasts.db").exists()


async def test_carried_redis_options_reach_redis_py() -> None:
    from mtasts.sts.cache.redis import RedisCache

    url = from_pmsr(
        {
            "cache": {
                "type": "redis",
                "options": {"url": "redis://127.0.0.1:6379/0", "socket_timeout": 7, "db": 3},
            }
        }
    ).cache_url
    assert url is not None
    cache = await open_cache(url)
    assert isinstance(cache, RedisCache)
    kwargs = cache._client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 7.0
    assert kwargs["db"] == 3
    await cache.aclose()


async def test_redis_url_with_an_option_redis_py_lacks_is_a_config_error() -> None:
    """Not a TypeError at the first lookup: refused when the cache is opened."""
    with pytest.raises(ConfigError, match="bogus"):
        await open_cache("redis://127.0.0.1:6379/0?bogus=1")
