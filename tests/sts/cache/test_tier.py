"""The memory tier in front of a shared cache: write-through, and the rules that bound how
long a copy is served (its TTL against the fleet, the TXT re-check, max_age expiry)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from mtasts.sts.cache import MemoryCache, PolicyCache, open_cache
from mtasts.sts.cache.redis import RedisCache
from mtasts.sts.cache.tier import MemoryTier, tier_until
from mtasts.sts.policy import parse_policy
from mtasts.sts.refresh import CacheEntry, after_fetch_ok

from .test_contract import REDIS_URL, redis_or_skip

T0 = 1_700_000_000.0


def policy_entry(
    record_id: str, *, now: float = T0, recheck: float = 3600, max_age: int = 86400
) -> CacheEntry:
    text = f"version: STSv1\nmode: enforce\nmx: mx.{record_id}.test\nmax_age: {max_age}\n"
    seen = CacheEntry("example.com", now, now + recheck, txt_id=record_id)
    return after_fetch_ok(seen, record_id, parse_policy(text), text, now)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


# --- the rules, on a memory backend (no I/O) ---------------------------------------------


def test_a_copy_ends_at_the_ttl_the_recheck_or_the_expiry_whichever_first() -> None:
    entry = policy_entry("a", recheck=300, max_age=86400)
    assert tier_until(entry, T0, ttl=60) == T0 + 60  # the fleet bound
    assert tier_until(entry, T0, ttl=3600) == T0 + 300  # the TXT re-check (new id?)
    short = policy_entry("a", recheck=3600, max_age=100)
    assert tier_until(short, T0, ttl=3600) == T0 + 100  # max_age expiry (RFC 8461 §3.2)
    negative = CacheEntry("example.com", T0, T0 + 30)  # "no policy" until its re-check
    assert tier_until(negative, T0, ttl=60) == T0 + 30


async def test_reads_are_served_from_memory_until_the_copy_ends() -> None:
    clock = Clock()
    backend = MemoryCache()
    tier = MemoryTier(backend, ttl=60, clock=clock)
    await backend.set(policy_entry("a"))
    assert tier.peek("example.com") is None  # never read: not in memory
    first = await tier.get("example.com")
    assert first is not None
    assert tier.peek("example.com") is first
    await backend.set(policy_entry("b"))  # a fleet peer stores a newer policy id
    clock.now = T0 + 59
    assert (await tier.get("example.com")) is first  # within the ttl: the copy
    clock.now = T0 + 60
    assert tier.peek("example.com") is None  # the copy ended
    newer = await tier.get("example.com")
    assert newer is not None
    assert newer.record_id == "b"


async def test_writes_and_deletes_go_through_to_the_backend() -> None:
    clock = Clock()
    backend = MemoryCache()
    tier = MemoryTier(backend, clock=clock)
    entry = policy_entry("a")
    await tier.set(entry)
    assert backend.peek("example.com") is entry
    assert tier.peek("example.com") is entry
    await tier.delete("example.com")
    assert backend.peek("example.com") is None
    assert tier.peek("example.com") is None
    assert await tier.get("example.com") is None


async def test_the_tier_is_bounded_least_recently_used_first() -> None:
    clock = Clock()
    tier = MemoryTier(MemoryCache(), max_entries=2, clock=clock)
    for name in ("a.test", "b.test", "c.test"):
        await tier.set(CacheEntry(name, T0, T0 + 600))
    assert len(tier) == 2
    assert tier.peek("a.test") is None  # evicted from memory, still in the backend
    assert await tier.get("a.test") is not None


# --- two daemons of a fleet on one real backend ------------------------------------------


@pytest.fixture(params=["sqlite", "redis"])
async def backends(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], PolicyCache]]:
    """A factory of handles on one shared backend (each daemon opens its own)."""
    opened: list[PolicyCache] = []
    if request.param == "redis":
        redis_or_skip()
        prefix = f"mtasts-test:{uuid.uuid4().hex}:"

        def make() -> PolicyCache:
            client = aioredis.Redis.from_url(REDIS_URL)
            cache = RedisCache(client, REDIS_URL, prefix=prefix)
            opened.append(cache)
            return cache
    else:
        url = f"sqlite:///{tmp_path}/shared.db"
        opened += [await open_cache(url), await open_cache(url)]
        handles = iter(list(opened))

        def make() -> PolicyCache:
            return next(handles)

    yield make
    await opened[0].delete("example.com")
    for cache in opened:
        await cache.aclose()


async def test_a_newer_policy_id_stored_by_a_peer_is_seen_within_the_ttl(
    backends: Callable[[], PolicyCache],
) -> None:
    clock = Clock()
    ours = MemoryTier(backends(), ttl=60, clock=clock)
    peer = MemoryTier(backends(), ttl=60, clock=clock)
    await peer.set(policy_entry("a"))
    held = await ours.get("example.com")
    assert held is not None
    assert held.record_id == "a"
    clock.now = T0 + 10
    await peer.set(policy_entry("b", now=T0 + 10))  # the peer saw a new id and fetched it
    assert ours.peek("example.com") is held  # our copy, without a backend read
    clock.now = T0 + 61
    seen = await ours.get("example.com")
    assert seen is not None
    assert seen.record_id == "b"
    assert ours.peek("example.com") is seen


async def test_the_txt_recheck_reads_the_backend_whatever_the_ttl(
    backends: Callable[[], PolicyCache],
) -> None:
    clock = Clock()
    ours = MemoryTier(backends(), ttl=86400, clock=clock)
    peer = MemoryTier(backends(), ttl=86400, clock=clock)
    await peer.set(policy_entry("a", recheck=300))
    assert (await ours.get("example.com")) is not None
    await peer.set(policy_entry("b", now=T0 + 100, recheck=300))
    clock.now = T0 + 299
    held = ours.peek("example.com")
    assert held is not None
    assert held.record_id == "a"
    clock.now = T0 + 300  # the record is due to be checked again: ask the backend
    assert ours.peek("example.com") is None
    seen = await ours.get("example.com")
    assert seen is not None
    assert seen.record_id == "b"


async def test_a_purge_by_a_peer_applies_within_the_ttl(
    backends: Callable[[], PolicyCache],
) -> None:
    clock = Clock()
    ours = MemoryTier(backends(), ttl=60, clock=clock)
    peer = backends()
    await peer.set(policy_entry("a"))
    assert await ours.get("example.com") is not None
    await peer.delete("example.com")
    clock.now = T0 + 60
    assert await ours.get("example.com") is None
