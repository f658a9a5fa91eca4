"""What `mtasts monitor` and `mtasts advise` add to the work they build on, in one run.

1. Monitor: one check of each of N lab domains through ``Monitor.check`` (check, snapshot,
   history read and write, conditions, alerts sync) against the bare ``check_domain``
   (what `mtasts check` runs), same lab, same concurrency, alternating rounds.
2. Advise: the evidence read (``monitor.reported.read_evidence``) of one domain over 14
   days with R reporters a day against ``tlsrpt received``'s own query
   (``received_query.day_summaries``) over the same domain and days, on SQLite and
   (when reachable) PostgreSQL.

    .venv/bin/python bench/monitor.py [--domains 20] [--reporters 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from mtasts.check.runner import Target, check_domain
from mtasts.lab.testing import healthy_domain, running_lab
from mtasts.monitor.reported import read_evidence
from mtasts.monitor.service import Monitor
from mtasts.monitor.settings import MonitorSettings
from mtasts.results import PolicyType
from mtasts.store.engine import open_database
from mtasts.store.migrate import upgrade
from mtasts.tlsrpt.aggregate import ReportSettings, build_reports
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.receive.decide import Channel, ReceiveSettings
from mtasts.tlsrpt.receive.intake import Arrival, Receiver
from mtasts.tlsrpt.receive.received_query import day_summaries
from mtasts.tlsrpt.report import write_report

PG_URL = os.environ.get("MTASTS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


async def bench_monitor(n: int, rounds: int, concurrency: int) -> None:
    names = [f"d{i}.test" for i in range(n)]
    scenario = healthy_domain(names[0], max_age=1209600)
    for name in names[1:]:
        scenario = scenario + healthy_domain(name, max_age=1209600)
    async with running_lab(scenario) as lab:
        target = Target(lab.nameserver, lab.ca_file, lab.https_port, lab.smtp_port)
        with tempfile.TemporaryDirectory() as tmp:
            db = open_database(f"sqlite:///{Path(tmp) / 'm.db'}")
            await upgrade(db)
            settings = MonitorSettings(domains=tuple(names), concurrency=concurrency, jitter=0)
            mon = Monitor(db, settings, target)
            gate = asyncio.Semaphore(concurrency)

            async def bare(name: str) -> None:
                async with gate:
                    await check_domain(name, target)

            bare_t, mon_t = [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                await asyncio.gather(*(bare(d) for d in names))
                bare_t.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await mon.run_once()
                mon_t.append(time.perf_counter() - t0)
            await db.close()
    b, m = statistics.median(bare_t), statistics.median(mon_t)
    print(
        f"monitor, {n} domains, concurrency {concurrency}, median of {rounds}: "
        f"check_domain {b * 1000 / n:.1f} ms/domain, Monitor.check {m * 1000 / n:.1f} "
        f"ms/domain: {m / b:.2f}x ({(m - b) * 1000 / n:+.1f} ms/domain)"
    )


def _report(domain: str, day: date, org: str, ok: int, failed: int) -> bytes:
    lines = ("version: STSv1", "mode: testing", f"mx: mx1.{domain}", "max_age: 604800")
    counters = Counters()

    def session(*fails: FailureOutcome) -> SessionOutcome:
        p = PolicyOutcome(PolicyType.STS, domain, lines, (f"mx1.{domain}",), bool(fails), fails)
        return SessionOutcome(domain, "", (p,))

    counters.add(day, session(), n=ok)
    if failed:
        f = FailureOutcome("certificate-host-mismatch", "192.0.2.1", f"mx1.{domain}")
        counters.add(day, session(f), n=failed)
    (built,) = build_reports(counters, day, ReportSettings(org, f"tlsrpt@{org}.example"))
    return write_report(built.report)


async def bench_advise(url: str, schema: str | None, reporters: int, rounds: int) -> None:
    today = datetime.now(UTC).date()
    since = today - timedelta(days=13)
    raws = [
        _report("big.test", today - timedelta(days=d), f"org{r}", 50 + r, r % 3)
        for d in range(14)
        for r in range(reporters)
    ]
    receiver = await Receiver.open(url, ReceiveSettings(verify_dkim=False), schema=schema)
    now = datetime.now(UTC)
    await receiver.ingest_many([(raw, Arrival(Channel.FILE, "bench", now)) for raw in raws])
    db = receiver.store.db
    ours, peer = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ev = await read_evidence(db, "big.test", since, today)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await day_summaries(db, domain="big.test", since=since, until=today)
        peer.append(time.perf_counter() - t0)
    await receiver.close()
    o, p = statistics.median(ours), statistics.median(peer)
    kind = url.split(":", 1)[0]
    print(
        f"advise read, {kind}, {len(raws)} reports ({reporters} reporters x 14 days), "
        f"{ev.sts_sessions} sessions, median of {rounds}: read_evidence {o * 1000:.0f} ms, "
        f"day_summaries {p * 1000:.0f} ms: {o / p:.2f}x"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--domains", type=int, default=20)
    parser.add_argument("--reporters", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    await bench_monitor(args.domains, args.rounds, args.concurrency)
    with tempfile.TemporaryDirectory() as tmp:
        await bench_advise(f"sqlite:///{Path(tmp) / 'r.db'}", None, args.reporters, args.rounds)
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
    except (OSError, ImportError):
        print("advise read, postgresql: skipped (no server)")
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        await bench_advise(PG_URL, schema, args.reporters, args.rounds)
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
