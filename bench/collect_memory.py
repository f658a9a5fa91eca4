"""Peak RSS of `mtasts tlsrpt collect` under a flood of distinct datagrams.

The memory bound (256 MiB by default, ``--max-memory``) must hold as the process's
measured resident memory, not only as the collector's own accounting. This starts the
real process, floods its socket with ``-n`` distinct real-sized libtlsrpt datagrams (a
distinct domain each, an STS policy and a failure detail: ~420 bytes), with the store
down (a PostgreSQL URL nobody listens on) or up (SQLite; or PostgreSQL at --pg, in a
schema of its own, dropped afterwards), then SIGTERMs it, and reports VmHWM (the
kernel's peak RSS of the process) from /proc/PID/status.

    .venv/bin/python bench/collect_memory.py -n 1000000 --store down
    .venv/bin/python bench/collect_memory.py -n 600000 --store sqlite
    .venv/bin/python bench/collect_memory.py -n 600000 --store postgresql
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson


def datagram(i: int) -> bytes:
    d = f"host{i:08d}.flood.example"
    policy = {
        "policy-type": 2,
        "policy-domain": d,
        "policy-string": ["version: STSv1", "mode: enforce", f"mx: mx.{d}", "max_age: 86400"],
        "mx-host": [f"mx.{d}"],
        "failure-details": [{"c": 202, "s": "192.0.2.1", "n": f"mx.{d}", "r": "198.51.100.7"}],
        "t": 1,
        "f": 1,
    }
    return orjson.dumps(
        {"dpv": "1", "d": d, "pr": f"v=TLSRPTv1; rua=mailto:r@{d}", "policies": [policy]}
    )


def _psql(url: str, sql: str) -> None:
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=1_000_000, help="distinct datagrams")
    ap.add_argument("--store", choices=["down", "sqlite", "postgresql"], default="down")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--max-memory", default="", help="passed to collect (default: its own)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        sock = t / "c.sock"
        schema = f"bench_{os.getpid()}"
        if args.store == "down":
            store = "postgresql://postgres@127.0.0.1:1/none"
        elif args.store == "sqlite":
            store = f"sqlite:///{t / 'c.db'}"
        else:
            _psql(args.pg, f"CREATE SCHEMA {schema}")
            store = f"{args.pg}?search_path={schema}"
        cmd = [sys.executable, "-c", "from mtasts.cli.main import main; main()", "tlsrpt"]
        cmd += ["collect", "--socket", str(sock), "--store", store, "--spool", str(t / "s")]
        if args.max_memory:
            cmd += ["--max-memory", args.max_memory]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        while not sock.exists():
            if proc.poll() is not None:
                raise SystemExit(proc.stderr.read() if proc.stderr else "collect died")
            time.sleep(0.02)
        time.sleep(0.5)
        start = status(proc.pid)
        t0 = time.perf_counter()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for i in range(args.n):
                try:
                    s.sendto(datagram(i), str(sock))
                except OSError as exc:
                    proc.kill()
                    _, err = proc.communicate()
                    raise SystemExit(f"datagram {i}: {exc}; collect said:\n{err[-3000:]}") from None
        sent = time.perf_counter() - t0
        time.sleep(6)  # a flush interval: the last fold and flush attempt
        end = status(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=600)
        if args.store == "postgresql":
            _psql(args.pg, f"DROP SCHEMA {schema} CASCADE")
    mib = 1 << 20
    print(
        f"{args.n} distinct datagrams ({len(datagram(0))} bytes each) in {sent:.1f} s, "
        f"store {args.store}"
    )
    print(
        f"RSS at start {start['VmRSS'] / mib:.0f} MiB; after the flood {end['VmRSS'] / mib:.0f}"
        f" MiB; peak (VmHWM) {end['VmHWM'] / mib:.0f} MiB"
    )
    print(f"exit status {proc.returncode}; last lines of its log:")
    for line in err.strip().splitlines()[-4:]:
        print("   ", line[:200])


if __name__ == "__main__":
    main()
