"""In-process cost of one socketmap answer without answer reuse (``answer_ttl = 0``).

    .venv/bin/python bench/socketmap_inprocess.py [--domains 100000] [--calls 200000]
        [--rounds 5] [--profile out.pstats]

The daemon's real objects (``SocketmapServer`` over ``MxAwareSource`` over ``Resolver``
with a ``memory:`` cache, the MX cache and the DANE verdicts), every cache filled up
front for ``--domains`` domains of the realistic mix (bench/realistic.py), then
``SocketmapServer.answer`` called for Zipf-distributed requests. No network: this is the
cached path only. Prints the best round's process CPU time per answer. With
``--profile`` one extra round runs under cProfile. For repeatable instruction counts run
it under ``valgrind --tool=callgrind`` with ``--rounds 1``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import time

from realistic import Mix, generate, zipf_requests

from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient
from mtasts.net.tls import client_context
from mtasts.postfix.answers import ServerSettings
from mtasts.postfix.dane import DaneProbe
from mtasts.postfix.mxlookup import MxAwareSource, MxCache
from mtasts.postfix.mxpolicy import MxSet
from mtasts.postfix.server import SocketmapServer
from mtasts.sts.cache.memory import MemoryCache
from mtasts.sts.policy import read_policy
from mtasts.sts.refresh import CacheEntry
from mtasts.sts.resolver import Resolver


async def build(domains: int) -> tuple[SocketmapServer, Resolver, list[bytes]]:
    mix = generate(domains, Mix())
    now = time.time()
    cache = MemoryCache(max(domains, 1))
    dns = DnsClient(("127.0.0.1", 53))
    resolver = Resolver(dns, HttpsClient(dns, client_context(None)), cache)
    mx = MxCache(DaneProbe(("127.0.0.1", 53))._resolver)
    dane = DaneProbe(mx=mx)
    for d in mix.domains:
        if d.policy is None:
            await cache.set(CacheEntry(domain=d.name, checked_at=now, recheck_at=now + 3000))
            continue
        policy = read_policy(d.policy)
        await cache.set(
            CacheEntry(
                domain=d.name,
                checked_at=now,
                recheck_at=now + 3000,
                txt_id=d.record_id,
                record_id=d.record_id,
                policy=policy,
                raw_text=d.policy,
                fetched_at=now,
            )
        )
        mx._store(d.name, MxSet(tuple(d.mx), validated=d.dane), 3000)
        dane._verdicts[d.name] = (time.monotonic() + 3000, d.dane)
    server = SocketmapServer(MxAwareSource(resolver, mx), ServerSettings(answer_ttl=0), dane=dane)
    return server, resolver, zipf_requests(mix, 200_000, seed=1)


async def serve(args: argparse.Namespace) -> None:
    """The same server on a TCP port, driven by bench/socketmap_load.py (8 connections)."""
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from realistic import zipf_keys

    server, resolver, _ = await build(args.domains)
    host, port = await server.listen_tcp("127.0.0.1", 0)
    keys = Path(tempfile.mkdtemp()) / "keys.txt"
    keys.write_text("\n".join(zipf_keys(generate(args.domains), 200_000)) + "\n")
    load = [sys.executable, str(Path(__file__).with_name("socketmap_load.py")),
            f"{host}:{port}", f"@{keys}", str(args.conns), str(args.serve)]  # fmt: skip
    warm = await asyncio.create_subprocess_exec(*load[:-1], "2", stdout=subprocess.PIPE)
    await warm.communicate()  # first touch of the popular domains: not measured
    prof = cProfile.Profile(time.process_time) if args.profile else None
    cpu = time.process_time()
    if prof:
        prof.enable()
    proc = await asyncio.create_subprocess_exec(*load, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    if prof:
        prof.disable()
        prof.dump_stats(args.profile)
    used = time.process_time() - cpu
    result = json.loads(out)
    print(f"served over TCP: {result} -> {used / result['requests'] * 1e6:.1f} µs CPU per answer")
    await server.close()
    await resolver.aclose()


async def run(args: argparse.Namespace) -> None:
    if args.serve:
        await serve(args)
        return
    server, resolver, requests = await build(args.domains)
    n = min(args.calls, len(requests))
    framed = requests[:n]

    async def one_round() -> float:
        # as the daemon does: the snapshot or from memory inside data_received, else
        # the awaited path
        snapshot, now, answer = server.snapshot, server.answer_now, server.answer
        start = time.process_time()
        for r in framed:
            if snapshot(r) is None:
                p = r[r.index(b":") + 1 : -1]
                if now(p) is None:
                    await answer(p)
        return (time.process_time() - start) / n

    await one_round()  # first touch of every object
    best = min([await one_round() for _ in range(args.rounds)])
    print(f"{args.domains} domains, {n} Zipf requests: best {best * 1e6:.2f} µs CPU per answer")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        await one_round()
        prof.disable()
        prof.dump_stats(args.profile)
    await resolver.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile")
    parser.add_argument("--serve", type=float, default=0, help="seconds over TCP (uvloop)")
    parser.add_argument("--conns", type=int, default=8)
    args = parser.parse_args()
    if args.serve:
        import uvloop

        uvloop.run(run(args))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
