"""The dashboard over a year of reports from 100 reporters, on SQLite and PostgreSQL.

    .venv/bin/python bench/web_domain.py [--days 365] [--reporters 100] [--runs 15]
        [--backends sqlite,postgresql] [--pg postgresql://postgres@127.0.0.1:5432/test]

The generator writes, for one policy domain (bench.test) and ``--days`` UTC days to
2026-11-20, one report a day from each of ``--reporters`` organisations (one ``sts``
policy, 1,000-5,000 sessions; every fifth reporter also sends the same sessions as a
``tlsa`` entry, as Microsoft does), a failure detail on one day in three (one of five
result types, one of four receiving MXs, one of 50 sending IPs), and reports for four
other domains (noise the indices must skip). Reports go in through the intake
(Receiver.ingest_many), as `tlsrpt import` writes them.

Then `mtasts web` serves the store (real uvicorn on loopback, the live policy fetch off)
and each page is fetched ``--runs`` times by httpx, one after another; the figures are the
median and the worst wall time per response. The peer in the same run: the store's own
question for the same year (`tlsrpt received`'s day_summaries for the domain), which
the domain page must answer with more (filters, reported policies, reporters).
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

from mtasts.store.engine import open_database
from mtasts.tlsrpt.receive.decide import Channel, ReceiveSettings
from mtasts.tlsrpt.receive.intake import Arrival, Receiver
from mtasts.tlsrpt.receive.received_query import day_summaries
from mtasts.web.server import serving
from mtasts.web.settings import ListenAddress, WebSettings

END = date(2026, 11, 20)
DOMAIN = "bench.test"
RESULTS = (
    "certificate-expired",
    "starttls-not-supported",
    "validation-failure",
    "certificate-host-mismatch",
    "sts-policy-fetch-error",
)


def generate(days: int, reporters: int) -> list[bytes]:
    out = []
    for d in range(days):
        day = (END - timedelta(days=days - 1 - d)).isoformat()
        for r in range(reporters):
            ok = 1000 + (d * 37 + r * 101) % 4000
            failures = []
            if (d + r) % 3 == 0:
                failures.append(
                    {
                        "result-type": RESULTS[(d + r) % len(RESULTS)],
                        "sending-mta-ip": f"192.0.2.{(r * 7 + d) % 50}",
                        "receiving-mx-hostname": f"mx{(r + d) % 4}.{DOMAIN}",
                        "receiving-ip": f"198.51.100.{(r + d) % 4}",
                        "failed-session-count": 1 + (d + r) % 7,
                    }
                )
            failed = sum(int(f["failed-session-count"]) for f in failures)
            mode = "testing" if r % 10 == 9 else "enforce"

            def policy(
                kind: str,
                domain: str = DOMAIN,
                mode: str = mode,
                ok: int = ok,
                failed: int = failed,
                failures: list[dict[str, object]] = failures,
            ) -> dict[str, object]:
                return {
                    "policy": {
                        "policy-type": kind,
                        "policy-string": [
                            "version: STSv1",
                            f"mode: {mode}",
                            f"mx: *.{domain}",
                            "max_age: 604800",
                        ]
                        if kind == "sts"
                        else ["3 1 1 ab"],
                        "policy-domain": domain,
                        "mx-host": [f"*.{domain}"],
                    },
                    "summary": {
                        "total-successful-session-count": ok,
                        "total-failure-session-count": failed,
                    },
                    "failure-details": failures,
                }

            policies = [policy("sts")] + ([policy("tlsa")] if r % 5 == 0 else [])
            out.append(_report(f"Reporter {r:03d}", day, f"{r}-{day}", policies))
            if r < 4:  # another domain's report from the same sender: noise
                out.append(
                    _report(
                        f"Reporter {r:03d}", day, f"n{r}-{day}", [policy("sts", f"other{r}.test")]
                    )
                )
    return out


def _report(org: str, day: str, rid: str, policies: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {
            "organization-name": org,
            "date-range": {
                "start-datetime": f"{day}T00:00:00Z",
                "end-datetime": f"{day}T23:59:59Z",
            },
            "contact-info": "tlsrpt@example.net",
            "report-id": rid,
            "policies": policies,
        }
    ).encode()


async def fill(url: str, schema: str | None, raws: list[bytes]) -> float:
    t0 = time.perf_counter()
    receiver = await Receiver.open(url, ReceiveSettings(verify_dkim=False), schema=schema)
    try:
        at = datetime(2026, 11, 21, tzinfo=UTC)
        for i in range(0, len(raws), 2000):
            await receiver.ingest_many(
                [
                    (raw, Arrival(Channel.FILE, f"gen/{i + j}", at))
                    for j, raw in enumerate(raws[i : i + 2000])
                ]
            )
    finally:
        await receiver.close()
    return time.perf_counter() - t0


PEER = "peer: day_summaries, 365 days"
PAGES = {
    "overview /": "/",
    "domain, 30 days": f"/domain/{DOMAIN}",
    "domain, 365 days": f"/domain/{DOMAIN}?days=365",
    "domain, 365 days, one reporter": f"/domain/{DOMAIN}?days=365&org=Reporter+042",
    "domain, 365 days, one result type": f"/domain/{DOMAIN}?days=365&result=certificate-expired",
    "API domain, 365 days": f"/api/domains/{DOMAIN}?days=365",
    "reports list, page 1": f"/reports?domain={DOMAIN}",
    "reports list, page 700": f"/reports?domain={DOMAIN}&page=700",
}


def _fmt(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.1f} ms (max {max(samples) * 1000:6.1f})"


async def measure(
    url: str, schema: str | None, runs: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    out: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    db = open_database(url, schema=schema)
    try:
        samples, used = [], []
        for _ in range(runs):
            t0, c0 = time.perf_counter(), time.process_time()
            days = await day_summaries(
                db, domain=DOMAIN, since=END - timedelta(days=364), until=END
            )
            samples.append(time.perf_counter() - t0)
            used.append(time.process_time() - c0)
        assert 0 < len(days) <= 365
        out[PEER] = samples
        cpu[PEER] = used
    finally:
        await db.close()
    settings = WebSettings(listen=ListenAddress("127.0.0.1", 0))
    async with serving(settings, url, schema=schema, today=lambda: END) as (server, state):
        state.live = None  # measure our queries and rendering, not a DNS timeout
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            for name, path in PAGES.items():
                r = await client.get(path)  # warm
                assert r.status_code == 200, (path, r.status_code, r.text[:200])
                samples, used = [], []
                for _ in range(runs):
                    t0, c0 = time.perf_counter(), time.process_time()
                    r = await client.get(path)
                    samples.append(time.perf_counter() - t0)
                    used.append(time.process_time() - c0)
                    assert r.status_code == 200
                out[name] = samples
                cpu[name] = used
    return out, cpu


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--reporters", type=int, default=100)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument(
        "--pg",
        default=os.environ.get("MTASTS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = ap.parse_args()
    raws = generate(args.days, args.reporters)
    print(f"{len(raws)} reports ({args.days} days x {args.reporters} reporters + noise)")
    for backend in args.backends.split(","):
        schema = None
        tmp = tempfile.TemporaryDirectory()
        if backend == "sqlite":
            url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
        else:
            import asyncpg

            url, schema = args.pg, f"bench_{uuid.uuid4().hex[:12]}"
            conn = await asyncpg.connect(url)
            await conn.execute(f"CREATE SCHEMA {schema}")
            await conn.close()
        try:
            took = await fill(url, schema, raws)
            print(f"\n{backend}: stored in {took:.0f} s")
            res, cpu = await measure(url, schema, args.runs)
            peer = statistics.median(res[PEER])
            print(f"  {'':40s} {'wall, median (max)':>27s}  {'vs peer':>8s}  CPU (this process)")
            for name, samples in res.items():
                ratio = statistics.median(samples) / peer
                used = statistics.median(cpu[name]) * 1000
                print(f"  {name:40s} {_fmt(samples)}  {ratio:7.2f}x  {used:7.1f} ms")
        finally:
            if schema is not None:
                import asyncpg

                conn = await asyncpg.connect(args.pg)
                await conn.execute(f"DROP SCHEMA {schema} CASCADE")
                await conn.close()
            tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
