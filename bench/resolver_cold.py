"""Benchmark: cold resolution of many lab domains, 50 concurrent lookups of each, with a
bounded number of domains in flight. Counts the HTTPS GETs: exactly one per domain is
expected (postfix-mta-sts-resolver makes one per lookup: 50).

    .venv/bin/python bench/resolver_cold.py [--domains 1000] [--per-domain 50] [--parallel 100]

Not a test: prints figures for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from mtasts.lab.scenario import DomainSpec, HostSpec, Scenario
from mtasts.lab.testing import policy_text, running_lab
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient
from mtasts.net.tls import client_context
from mtasts.sts.cache import MemoryCache
from mtasts.sts.lookup import LookupStatus
from mtasts.sts.resolver import Resolver


async def run(domains: int, per_domain: int, parallel: int) -> None:
    names = [f"d{i}.bench.test" for i in range(domains)]
    # The MX hosts have an address (A record) but no SMTP server: the resolver never
    # contacts them, and 10,000 MX listeners on top of 10,000 policy hosts would pass the
    # usual hard limit of 20,000 open files.
    scenario = Scenario(
        domains=tuple(
            DomainSpec(
                name=n,
                mx=(f"mx1.{n}",),
                sts=((f"v=STSv1; id={i}",),),
                policy=policy_text((f"mx1.{n}",)),
            )
            for i, n in enumerate(names)
        ),
        hosts=tuple(HostSpec(f"mx1.{n}") for n in names),
    )
    started = time.perf_counter()
    async with running_lab(scenario) as lab:
        print(f"lab with {domains} domains started in {time.perf_counter() - started:.1f} s")
        dns = DnsClient(lab.nameserver)
        https = HttpsClient(dns, client_context(str(lab.ca_file)), port=lab.https_port)
        limit = asyncio.Semaphore(parallel)
        async with Resolver(dns, https, MemoryCache()) as resolver:

            async def one(name: str) -> bool:
                async with limit:
                    results = await asyncio.gather(
                        *(resolver.lookup(name) for _ in range(per_domain))
                    )
                return all(r.status is LookupStatus.STS for r in results)

            started = time.perf_counter()
            cpu = time.process_time()
            ok = await asyncio.gather(*(one(n) for n in names))
            wall = time.perf_counter() - started
            cpu_used = time.process_time() - cpu
        gets = sum(len(lab.policy_requests(n)) for n in names)
        txt = sum(1 for q in lab.dns_queries if q.name.startswith("_mta-sts."))
        print(
            f"{domains} domains x {per_domain} concurrent lookups, {parallel} domains at a time: "
            f"{domains / wall:.0f} domains/s ({wall:.2f} s wall, {cpu_used:.2f} s CPU in the "
            f"process, lab servers included); all sts: {all(ok)}; HTTPS GETs {gets} "
            f"({gets / domains:.2f} per domain); _mta-sts TXT queries {txt}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--per-domain", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.domains, args.per_domain, args.parallel))


if __name__ == "__main__":
    main()
