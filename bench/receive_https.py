"""HTTPS intake throughput: `mtasts tlsrpt receive` against a bare Starlette/uvicorn app.

    .venv/bin/python bench/receive_https.py [--reports 4000] [--senders 100]

Each server runs as its own process on loopback, plain HTTP (TLS costs the same to
all and is not what is measured), uvicorn with its h11 parser on the stock asyncio loop
(`tlsrpt receive` does not use uvloop: aiosmtpd's STARTTLS relies on asyncio's own SSL
transport):

- mtasts: `mtasts tlsrpt receive --http` into a fresh SQLite store (stream the body
  with its bound, read the report, deduplicate, store durably, then answer 200), per-
  client limits off (every sender is 127.0.0.1), max_inflight 256;
- intake, no store: the same service (limits, metrics, body streaming) around a
  receiver that stores nothing, to tell the network layer's cost from the store's;
- bare: a Starlette endpoint that only reads the body and answers 200.

The same generator drives both: ``--senders`` concurrent senders, each on its own
keep-alive connection, POST distinct gzip reports (application/tlsrpt+gzip, ~600 bytes)
until ``--reports`` have been answered. Prints reports/s, p50/p99 latency, the server's
peak RSS (VmHWM), and the ratio. A 503 (back-pressure) is retried and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import orjson

BARE = """
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def post(request):
    await request.body()
    return Response(b'{"result":"stored"}', media_type="application/json")

app = Starlette(routes=[Route("/tlsrpt", post, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), http="h11",
            loop="asyncio", log_level="warning", access_log=False)
"""


# The intake alone: `tlsrpt receive`'s service around a receiver that stores nothing
# (answers STORED at once), to tell the network layer's cost from the store's.
NULL_STORE = """
import asyncio, sys
from mtasts.tlsrpt.receive.decide import Disposition
from mtasts.tlsrpt.receive.intake import IngestOutcome
from mtasts.tlsrpt.receive.netconfig import parse_netconfig
from mtasts.tlsrpt.receive.service import ReceiveService, run_until_signalled

class NullStore:
    async def ingest_report(self, raw, arrival):
        return IngestOutcome(Disposition.STORED, 1, None, None)
    ingest_mail = ingest_report

config, _ = parse_netconfig({"http": "127.0.0.1:" + sys.argv[1], "rate": 0,
                             "client_concurrency": 0, "max_inflight": 256})
asyncio.run(run_until_signalled(ReceiveService(NullStore(), config)))
"""


def report(i: int) -> bytes:
    body = {
        "organization-name": "Bench Sender",
        "date-range": {
            "start-datetime": "2026-11-22T00:00:00Z",
            "end-datetime": "2026-11-22T23:59:59Z",
        },
        "contact-info": "tlsrpt@sender.test",
        "report-id": f"bench-{i}",
        "policies": [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.a.test"],
                    "policy-domain": "a.test",
                    "mx-host": ["mx1.a.test"],
                },
                "summary": {
                    "total-successful-session-count": 100 + i,
                    "total-failure-session-count": 2,
                },
                "failure-details": [
                    {
                        "result-type": "certificate-expired",
                        "sending-mta-ip": "192.0.2.1",
                        "receiving-mx-hostname": "mx1.a.test",
                        "failed-session-count": 2,
                    }
                ],
            }
        ],
    }
    return gzip.compress(orjson.dumps(body))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(
    proc: asyncio.subprocess.Process, port: int, bodies: list[bytes], senders: int
) -> dict[str, float]:
    before = cpu_seconds(proc.pid)
    result = await drive(port, bodies, senders)
    result["cpu_us"] = (cpu_seconds(proc.pid) - before) / len(bodies) * 1e6
    result["peak_rss_mib"] = peak_rss_mib(proc.pid)
    return result


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(m.group(1)) / 1024 if m else 0.0


async def wait_port(port: int) -> None:
    for _ in range(600):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


async def read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)content-length: (\d+)", head)
    if m:
        await reader.readexactly(int(m.group(1)))
    return status


async def drive(port: int, bodies: list[bytes], senders: int) -> dict[str, float]:
    queue = list(range(len(bodies)))
    latencies: list[float] = []
    retries = 0

    async def sender() -> None:
        nonlocal retries
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                i = queue.pop()
                body = bodies[i]
                head = (
                    f"POST /tlsrpt HTTP/1.1\r\nHost: bench\r\n"
                    f"Content-Type: application/tlsrpt+gzip\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                while True:
                    start = time.perf_counter()
                    writer.write(head + body)
                    status = await read_status(reader)
                    if status == 200:
                        latencies.append(time.perf_counter() - start)
                        break
                    retries += 1
                    if status != 503:
                        raise RuntimeError(f"status {status}")
                    writer.close()
                    await asyncio.sleep(0.01)
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "reports_per_s": len(latencies) / wall,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "retries": retries,
    }


async def run_server(args: list[str], port: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *args, env={**os.environ, **env}, stdout=asyncio.subprocess.DEVNULL
    )
    await wait_port(port)
    return proc


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), 60)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reports", type=int, default=4000)
    parser.add_argument("--senders", type=int, default=100)
    opts = parser.parse_args()
    bodies = [report(i) for i in range(opts.reports)]
    warm = [report(10**6 + i) for i in range(200)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="mtasts-bench-") as d:
        config = Path(d) / "mtasts.toml"
        config.write_text(
            "[receive]\nrate = 0\nclient_concurrency = 0\nmax_inflight = 256\nverify_dkim = false\n"
        )
        port = free_port()
        ours = await run_server(
            [
                sys.executable,
                "-c",
                "from mtasts.cli.main import main; main()",
                "tlsrpt",
                "receive",
                "--config",
                str(config),
                "--store",
                f"sqlite:///{d}/bench.db",
                "--http",
                f"127.0.0.1:{port}",
            ],
            port,
            {"MTASTS_CONFIG": str(config)},
        )
        await drive(port, warm, 20)
        results["mtasts tlsrpt receive"] = await measured(ours, port, bodies, opts.senders)
        await stop(ours)
        port = free_port()
        null = await run_server([sys.executable, "-c", NULL_STORE, str(port)], port, {})
        await drive(port, warm, 20)
        results["intake, no store"] = await measured(null, port, bodies, opts.senders)
        await stop(null)
        port = free_port()
        bare = await run_server([sys.executable, "-c", BARE, str(port)], port, {})
        await drive(port, warm, 20)
        results["bare starlette/uvicorn"] = await measured(bare, port, bodies, opts.senders)
        await stop(bare)
    print(f"{opts.reports} reports, {opts.senders} concurrent senders, keep-alive, plain HTTP")
    for name, r in results.items():
        print(
            f"{name:24} {r['reports_per_s']:8.0f} reports/s  p50 {r['p50_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  CPU {r['cpu_us']:5.0f} us/report  "
            f"peak RSS {r['peak_rss_mib']:5.0f} MiB  "
            f"(503 retried: {r['retries']:.0f})"
        )
    b = results["bare starlette/uvicorn"]
    for name in ("mtasts tlsrpt receive", "intake, no store"):
        a = results[name]
        print(
            f"ratio {name} / bare: throughput {a['reports_per_s'] / b['reports_per_s']:.2f}x, "
            f"p99 {a['p99_ms'] / b['p99_ms']:.1f}x"
        )


if __name__ == "__main__":
    asyncio.run(main())
