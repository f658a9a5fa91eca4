"""Memory of a large ``memory:`` policy cache, and lookup latency during a refresh wave.

    .venv/bin/python bench/cache_memory.py [--policies 1000000] [--texts unique|shared]
        [--wave N]

Fills a ``MemoryCache`` with ``--policies`` enforce policies (``unique``: every domain its
own policy text and MX names, the worst case; ``shared``: the realistic workload's, where
domains on one mail provider publish the same text) and reports the RSS it added, then
the RSS added by looking each domain up once through the resolver (its answer memo and
in-use table, what a daemon that has seen every domain holds). With ``--wave N``: N
policies are made due for their proactive refresh at once and ``Resolver.refresh_due``
runs (it scans every in-use domain; the N re-checks fail fast: no DNS server), while a
task looks domains up from memory every millisecond; prints the p50/p99/max of those
lookups (the stall a refresh wave causes) and how long the scan took.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
from dataclasses import replace
from pathlib import Path

from realistic import _policy, _provider_mx

from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient
from mtasts.net.tls import client_context
from mtasts.sts.cache.memory import MemoryCache
from mtasts.sts.policy import read_policy
from mtasts.sts.refresh import CacheEntry, after_fetch_ok
from mtasts.sts.resolver import Resolver


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def text_for(i: int, shared: bool) -> str:
    if shared:
        p = i % 50
        return _policy("enforce", _provider_mx(p), wildcard=p % 2 == 0)
    d = f"d{i}.example"
    return f"version: STSv1\nmode: enforce\nmx: mx1.{d}\nmx: *.{d}\nmax_age: 604800\n"


async def run(args: argparse.Namespace) -> None:
    now = time.time()
    gc.collect()
    base = rss_mib()
    cache = MemoryCache(max_entries=args.policies)
    for i in range(args.policies):
        text = text_for(i, args.texts == "shared")
        seen = CacheEntry(f"d{i}.example", now, now + 3600, txt_id=str(i))
        await cache.set(after_fetch_ok(seen, str(i), read_policy(text), text, now))
    gc.collect()
    filled = rss_mib()
    print(
        f"{args.policies} policies ({args.texts} texts): cache {filled - base:.0f} MiB RSS "
        f"({(filled - base) * 1048576 / args.policies:.0f} bytes per policy)"
    )
    dns = DnsClient(("127.0.0.1", 9), timeout=0.05)  # discard port: re-checks fail fast
    resolver = Resolver(dns, HttpsClient(dns, client_context(None)), cache, concurrency=32)
    for i in range(args.policies):
        assert resolver.peek(f"d{i}.example") is not None
    gc.collect()
    looked = rss_mib()
    print(
        f"after one lookup of each: +{looked - filled:.0f} MiB (answer memo, in-use table); "
        f"total {looked - base:.0f} MiB, {(looked - base) * 1048576 / args.policies:.0f} "
        "bytes per policy"
    )
    if args.wave:
        await wave(resolver, cache, args.policies, args.wave, now)
    await resolver.aclose()


async def wave(resolver: Resolver, cache: MemoryCache, count: int, due: int, now: float) -> None:
    # due for the proactive refresh: fetched two days ago (max_age 7 days)
    for i in range(due):
        name = f"d{i}.example"
        entry = cache.peek(name)
        assert entry is not None
        await cache.set(replace(entry, fetched_at=now - 2 * 86400))
    latencies: list[float] = []
    rng = random.Random(1)
    done = asyncio.Event()

    async def looker() -> None:
        while not done.is_set():
            t = time.perf_counter()
            resolver.peek(f"d{rng.randrange(due, count)}.example")  # not due themselves
            await asyncio.sleep(0.001)
            latencies.append(time.perf_counter() - t - 0.001)

    task = asyncio.create_task(looker())
    started = time.perf_counter()
    ran = await resolver.refresh_due()
    took = time.perf_counter() - started
    done.set()
    await task
    latencies.sort()
    n = len(latencies)
    print(
        f"refresh wave, {count} in-use domains scanned, {due} due: {ran} re-checks, "
        f"{took:.1f} s; lookups meanwhile ({n}): p50 {latencies[n // 2] * 1e3:.2f} ms, p99 "
        f"{latencies[int(n * 0.99)] * 1e3:.2f} ms, max {latencies[-1] * 1e3:.1f} ms "
        "(time beyond the 1 ms sleep)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=1_000_000)
    parser.add_argument("--texts", choices=["unique", "shared"], default="unique")
    parser.add_argument("--wave", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
