"""Benchmark: the cost of a cached lookup per cache backend, the latency of a cached lookup
while the policy host takes 10 s, and the memory of 100,000 cached policies.

    .venv/bin/python bench/resolver_cached.py [--lookups 20000] [--policies 100000]

Runs on the lab (real DNS + HTTPS on loopback). Redis is measured when 127.0.0.1:6379
answers. Not a test: prints figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import socket
import statistics
import tempfile
import time
from pathlib import Path

from mtasts.lab.testing import healthy_domain, running_lab
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient, Timeouts
from mtasts.net.tls import client_context
from mtasts.sts.cache import MemoryCache, PolicyCache, open_cache
from mtasts.sts.cache.redis import RedisCache
from mtasts.sts.policy import parse_policy
from mtasts.sts.refresh import CacheEntry, after_fetch_ok
from mtasts.sts.resolver import Resolver


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def cached_cost(lookups: int) -> None:
    async with running_lab(healthy_domain("bench.test")) as lab:
        tmp = tempfile.TemporaryDirectory()
        urls = ["memory:", f"sqlite:///{tmp.name}/bench.db"]
        if redis_up():
            urls.append("redis://127.0.0.1:6379/0")
        for url in urls:
            cache: PolicyCache = (
                RedisCache.from_url(url, prefix="mtasts-bench:")
                if url.startswith("redis:")
                else await open_cache(url)
            )
            dns = DnsClient(lab.nameserver)
            https = HttpsClient(dns, client_context(str(lab.ca_file)), port=lab.https_port)
            async with Resolver(dns, https, cache) as resolver:
                await resolver.lookup("bench.test")
                for _ in range(200):  # warm up
                    await resolver.lookup("bench.test")
                started = time.perf_counter()
                cpu = time.process_time()
                for _ in range(lookups):
                    await resolver.lookup("bench.test")
                wall = (time.perf_counter() - started) / lookups * 1e6
                cpu_us = (time.process_time() - cpu) / lookups * 1e6
                await resolver.cache.delete("bench.test")
            print(
                f"cached lookup, {url.split(':')[0]:7}: {wall:8.1f} µs wall, {cpu_us:8.1f} µs CPU"
            )
        tmp.cleanup()


async def slow_host_latency() -> None:
    """A cached (but due) policy while its host takes 10 s: lookups must not wait."""
    now = [1_800_000_000.0]
    async with running_lab(healthy_domain("slow.test")) as lab:
        dns = DnsClient(lab.nameserver)
        https = HttpsClient(
            dns, client_context(str(lab.ca_file)), port=lab.https_port, timeouts=Timeouts()
        )
        async with Resolver(dns, https, MemoryCache(), clock=lambda: now[0]) as resolver:
            await resolver.lookup("slow.test")
            lab.set_policy_host("slow.test", delay_ms=10_000)
            lab.set_txt("_mta-sts.slow.test", ["v=STSv1; id=2"])
            now[0] += 3600
            await resolver.lookup("slow.test")  # starts the background refresh
            await asyncio.sleep(0.5)  # its GET now waits on the slow host
            samples = []
            for _ in range(2000):
                started = time.perf_counter()
                await resolver.lookup("slow.test")
                samples.append((time.perf_counter() - started) * 1e3)
            samples.sort()
            print(
                f"lookup while the policy host takes 10 s: p50 {statistics.median(samples):.3f} ms,"
                f" p99 {samples[int(len(samples) * 0.99)]:.3f} ms, max {samples[-1]:.3f} ms,"
                f" GETs {len(lab.policy_requests('slow.test'))}"
            )


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def memory_footprint(count: int) -> None:
    gc.collect()
    before = rss_mib()
    cache = MemoryCache(max_entries=count)
    for i in range(count):
        domain = f"d{i}.example"
        text = (
            f"version: STSv1\r\nmode: enforce\r\nmx: mx1.{domain}\r\nmx: *.{domain}\r\n"
            "max_age: 604800\r\n"
        )
        entry = CacheEntry(domain, 0.0, 300.0, txt_id=str(i))
        await cache.set(after_fetch_ok(entry, str(i), parse_policy(text), text, 0.0))
    gc.collect()
    after = rss_mib()
    print(f"memory backend, {count} cached policies: {after - before:.0f} MiB RSS added")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--policies", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(cached_cost(args.lookups))
    asyncio.run(slow_host_latency())
    asyncio.run(memory_footprint(args.policies))


if __name__ == "__main__":
    main()
