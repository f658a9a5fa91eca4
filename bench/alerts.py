"""What `mtasts alerts run` costs on a big store, against `tlsrpt received`'s own read.

A store holds D days of reports from R reporters for one domain (default: a year, 100
reporters: 36,500 reports; a few failures each). Measured, alternating, same process:

1. an evaluation of the rules (``run_rules``: scope, the rules' reads over the 37-day
   baseline, the rules, the sync; policy-mismatch off: it fetches over the network)
   against ``received_query.day_summaries`` over the same 37 days (what `tlsrpt
   received` and the dashboard read for that window);
2. the metrics refresh (``metrics.figures``: every stored day of every domain) against
   ``day_summaries`` over the whole store;
3. the per-poll question (``queries.change_marker``) alone.

On SQLite and, when reachable, PostgreSQL.

    .venv/bin/python bench/alerts.py [--days 365] [--reporters 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from mtasts.alerts import queries
from mtasts.alerts.evaluate import run_rules
from mtasts.alerts.metrics import figures
from mtasts.alerts.settings import RULES, AlertSettings
from mtasts.alerts.store import AlertStore
from mtasts.config import Settings
from mtasts.tlsrpt.receive.decide import Channel, ReceiveSettings
from mtasts.tlsrpt.receive.intake import Arrival, Receiver
from mtasts.tlsrpt.receive.received import ReceivedStore
from mtasts.tlsrpt.receive.received_query import day_summaries

PG_URL = os.environ.get("MTASTS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TODAY = date(2027, 1, 15)
DOMAIN = "bench.example"
TYPES = ("certificate-expired", "starttls-not-supported", "validation-failure")


def report(org: int, day: date) -> bytes:
    fails = (org + day.toordinal()) % 7
    return json.dumps(
        {
            "organization-name": f"Reporter {org}",
            "date-range": {
                "start-datetime": f"{day}T00:00:00Z",
                "end-datetime": f"{day}T23:59:59Z",
            },
            "contact-info": f"tls@r{org}.example",
            "report-id": f"{org}-{day}",
            "policies": [
                {
                    "policy": {
                        "policy-type": "sts",
                        "policy-string": ["version: STSv1", "mode: enforce", "mx: mx.bench"],
                        "policy-domain": DOMAIN,
                        "mx-host": ["mx.bench.example"],
                    },
                    "summary": {
                        "total-successful-session-count": 100,
                        "total-failure-session-count": fails,
                    },
                    "failure-details": [
                        {
                            "result-type": TYPES[org % len(TYPES)],
                            "sending-mta-ip": f"192.0.2.{org % 250}",
                            "receiving-mx-hostname": "mx.bench.example",
                            "failed-session-count": fails,
                        }
                    ]
                    if fails
                    else [],
                }
            ],
        }
    ).encode()


async def fill(url: str, schema: str | None, days: int, reporters: int) -> None:
    receiver = Receiver(
        ReceivedStore.open(url, schema=schema), ReceiveSettings(verify_dkim=False, batch_size=500)
    )
    await receiver.store.upgrade()
    when = datetime.now(UTC)
    batch: list[tuple[bytes, Arrival]] = []
    try:
        for d in range(days):
            day = TODAY - timedelta(days=d)
            for org in range(reporters):
                batch.append((report(org, day), Arrival(Channel.FILE, f"{org}-{day}", when)))
            if len(batch) >= 2000:
                await receiver.ingest_many(batch)
                batch = []
        if batch:
            await receiver.ingest_many(batch)
    finally:
        await receiver.close()


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def measure(url: str, schema: str | None, days: int, reporters: int, rounds: int) -> None:
    start = time.perf_counter()
    await fill(url, schema, days, reporters)
    print(f"  filled {days * reporters} reports in {time.perf_counter() - start:.1f} s")
    store = AlertStore.open(url, schema=schema)
    db = store.db
    settings = AlertSettings(rules=frozenset(RULES) - {"policy-mismatch"})
    window = TODAY - timedelta(days=settings.new_result_type_days + settings.baseline_days - 1)
    base = Settings()
    pairs: dict[str, tuple[list[float], list[float]]] = {
        "evaluation vs day_summaries (37 days)": ([], []),
        "metrics refresh vs day_summaries (all)": ([], []),
    }
    marker: list[float] = []
    try:
        for i in range(rounds):

            async def evaluate(i: int = i) -> Any:
                return await run_rules(
                    store, settings, today=TODAY, base=base, channels={}, now=1e9 + i
                )

            ours, peer = pairs["evaluation vs day_summaries (37 days)"]
            ours.append(await timed(evaluate))
            peer.append(await timed(lambda: day_summaries(db, since=window, until=TODAY)))
            ours, peer = pairs["metrics refresh vs day_summaries (all)"]
            ours.append(await timed(lambda: figures(db, store, TODAY)))
            peer.append(await timed(lambda: day_summaries(db)))
            marker.append(await timed(lambda: queries.change_marker(db)))
    finally:
        await store.close()
    for name, (ours, peer) in pairs.items():
        a, b = statistics.median(ours), statistics.median(peer)
        print(f"  {name}: {a * 1000:.0f} ms vs {b * 1000:.0f} ms (ratio {a / b:.2f})")
    print(f"  change_marker (each poll): {statistics.median(marker) * 1000:.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reporters", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"SQLite, {args.days} days x {args.reporters} reporters:")
        await measure(f"sqlite:///{tmp}/bench.db", None, args.days, args.reporters, args.rounds)
    try:
        import asyncpg

        conn = await asyncpg.connect(PG_URL, timeout=3)
    except (TimeoutError, OSError, ImportError):
        print("PostgreSQL: not reachable, skipped")
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        print(f"PostgreSQL, {args.days} days x {args.reporters} reporters:")
        await measure(PG_URL, schema, args.days, args.reporters, args.rounds)
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
