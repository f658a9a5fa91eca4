"""Datagrams per second counted: `mtasts tlsrpt collect` vs tlsrpt-collectd 0.6.0.

Same run, same machine, same datagrams (libtlsrpt format, 100 domains, 80 % success,
20 % with a failure detail), sent over a blocking AF_UNIX SOCK_DGRAM socket as fast as the
collector drains it. Each collector runs as its own process with a SQLite store; the
clock runs from the first send to the collector's exit after SIGTERM (so the final
flush is included), and then the store is read back to check every datagram was counted.

    uv venv /tmp/tlsrpt-peer-venv && uv pip install -p /tmp/tlsrpt-peer-venv tlsrpt-reporter==0.6.0
    .venv/bin/python bench/collect_datagrams.py --peer /tmp/tlsrpt-peer-venv/bin/tlsrpt-collectd
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson


def datagrams(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        d = f"d{i % 100}.example"
        policy: dict[str, object] = {
            "policy-type": 2,
            "policy-domain": d,
            "policy-string": ["version: STSv1", "mode: enforce", f"mx: mx.{d}", "max_age: 86400"],
            "mx-host": [f"mx.{d}"],
            "t": 0,
            "f": 0,
        }
        if i % 5 == 0:
            policy["failure-details"] = [
                {"c": 202, "s": "192.0.2.1", "n": f"mx.{d}", "r": f"198.51.100.{i % 7}"}
            ]
            policy["t"], policy["f"] = 1, 1
        out.append(
            orjson.dumps(
                {"dpv": "1", "d": d, "pr": f"v=TLSRPTv1; rua=mailto:r@{d}", "policies": [policy]}
            )
        )
    return out


def send(target: str, payload: list[bytes]) -> None:
    """One sender process: blocking sendto, as libtlsrpt in tlsrpt_set_blocking() mode."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for d in payload:
            s.sendto(d, target)


def run(
    cmd: list[str], sock: Path, payload: list[bytes], senders: int, env: dict[str, str] | None
) -> tuple[float, float]:
    """Start ``cmd``, send ``payload`` to ``sock``, SIGTERM, wait; (seconds, CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 30
    while not sock.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} did not create {sock}")
        time.sleep(0.01)
    time.sleep(0.5)  # let it finish starting up
    t0 = time.perf_counter()
    parts = [payload[i::senders] for i in range(senders)]
    with multiprocessing.get_context("fork").Pool(senders) as pool:
        pool.starmap(send, [(str(sock), part) for part in parts])
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


# The ceiling of this set-up: a Python process that only drains the socket with a 64 KiB
# buffer and orjson.loads each datagram (no counting, no store), until SIGTERM.
BARE_READER = """
import signal, socket, sys, orjson
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
n = 0
def done(*_):
    s.setblocking(False)
    global n
    try:
        while True:
            orjson.loads(s.recv(65536)); n += 1
    except BlockingIOError:
        pass
    open(sys.argv[2], "w").write(str(n)); sys.exit(0)
signal.signal(signal.SIGTERM, done)
buf = bytearray(65536); v = memoryview(buf)
while True:
    k = s.recv_into(v); orjson.loads(v[:k]); n += 1
"""


def count(db: Path, sql: str) -> int:
    if not sql:
        return int(db.read_text())
    with sqlite3.connect(db) as con:
        return int(con.execute(sql).fetchone()[0] or 0)


OURS_SQL = "SELECT sum(successful + failed) FROM tlsrpt_policy_counters"
Command = tuple[str, list[str], Path, Path, str, dict[str, str] | None]


def ours(t: Path, name: str) -> tuple[list[str], Path, Path]:
    sock, db = t / f"{name}.sock", t / f"{name}.db"
    cmd = [sys.executable, "-c", "from mtasts.cli.main import main; main()", "tlsrpt"]
    return [*cmd, "collect", "--socket", str(sock), "--store", f"sqlite:///{db}"], sock, db


def commands(t: Path, peer_bin: str, baseline: str | None) -> list[Command]:
    ours_cmd, ours_sock, ours_db = ours(t, "ours")
    peer_sock, peer_db, cfg = t / "peer.sock", t / "peer.db", t / "collectd.cfg"
    cfg.write_text("[tlsrpt_collectd]\n")  # its defaults; it refuses to start without one
    peer = [
        peer_bin,
        "--storage",
        f"sqlite://{peer_db}",
        "--socketname",
        str(peer_sock),
        "--config_file",
        str(cfg),
    ]
    bare_sock, bare_out = t / "bare.sock", t / "bare.count"
    bare = [sys.executable, "-c", BARE_READER, str(bare_sock), str(bare_out)]
    out: list[Command] = [
        ("bare reader (ceiling)", bare, bare_sock, bare_out, "", None),
        ("mtasts tlsrpt collect", ours_cmd, ours_sock, ours_db, OURS_SQL, None),
    ]
    if baseline:
        base_cmd, base_sock, base_db = ours(t, "base")
        env = {**os.environ, "PYTHONPATH": baseline}
        out.append(("mtasts (baseline)", base_cmd, base_sock, base_db, OURS_SQL, env))
    peer_sql = "SELECT sum(cntrtotal) FROM finalresults"
    out.append(("tlsrpt-collectd 0.6.0", peer, peer_sock, peer_db, peer_sql, None))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="datagrams per run")
    ap.add_argument("--peer", default="/tmp/tlsrpt-peer-venv/bin/tlsrpt-collectd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--senders", type=int, default=1, help="sending processes (MTA smtp(8)s)")
    ap.add_argument(
        "--baseline",
        metavar="SRC",
        help="also run the mtasts found in this src directory (PYTHONPATH), e.g. an older "
        "commit's: git archive HEAD~1 src | tar -x -C /tmp/base; --baseline /tmp/base/src",
    )
    args = ap.parse_args()
    payload = datagrams(args.n)
    rows = []
    idle: dict[str, float] = {}
    for r in range(-1, args.rounds):  # round -1: no datagrams, measures start-up CPU
        with tempfile.TemporaryDirectory() as tmp:
            t = Path(tmp)
            for name, cmd, sock, db, sql, env in commands(t, args.peer, args.baseline):
                el, cpu = run(cmd, sock, payload if r >= 0 else [], args.senders, env)
                if r < 0:
                    idle[name] = cpu
                    continue
                rows.append((name, r, el, cpu - idle[name], count(db, sql)))
    print(
        f"{args.n} datagrams per run from {args.senders} senders, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'collector':24} {'run':>3} {'seconds':>8} {'dgram/s':>9} {'µs CPU/dgram':>13} counted")
    for name, r, el, cpu, n in rows:
        ok = "all" if n == args.n else f"{n} of {args.n}"
        print(f"{name:24} {r:>3} {el:8.2f} {args.n / el:9.0f} {cpu / args.n * 1e6:13.1f} {ok}")
    print("(CPU: the collector process, minus its own start-up/shut-down CPU with no datagrams)")
    by: dict[str, list[tuple[float, float]]] = {}
    for name, _, el, cpu, _ in rows:
        by.setdefault(name, []).append((el, cpu / args.n))
    ours, peer = by["mtasts tlsrpt collect"], by["tlsrpt-collectd 0.6.0"]
    ceiling = args.n / min(e for e, _ in by["bare reader (ceiling)"])
    print(f"ceiling of this set-up (bare reader, best): {ceiling:.0f} datagrams/s")
    wall = min(e for e, _ in peer) / min(e for e, _ in ours)
    cpu = statistics.median(c for _, c in peer) / statistics.median(c for _, c in ours)
    print(
        f"ratio: best wall clock of {args.rounds} {wall:.1f}x; median CPU per datagram {cpu:.1f}x"
    )
    if args.baseline:
        base = by["mtasts (baseline)"]
        wall = min(e for e, _ in peer) / min(e for e, _ in base)
        cpu = statistics.median(c for _, c in peer) / statistics.median(c for _, c in base)
        print(f"baseline ratio: best wall clock {wall:.1f}x; median CPU per datagram {cpu:.1f}x")


if __name__ == "__main__":
    main()
