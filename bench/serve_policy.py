"""`mtasts serve policy` as a process: server CPU per request and RSS, for valid fetches
and for failed TLS handshakes.

    .venv/bin/python bench/serve_policy.py [--requests N] [--bogus N]
    PYTHONPATH=OTHER/src .venv/bin/python bench/serve_policy.py --no-limit-options  # older tree

Starts the server (HTTPS with a trustme certificate, per-client limits off, since all
requests come from one address), then from 16 client threads: N valid GETs over plain
HTTP (a second server without --cert), N valid GETs over HTTPS, and --bogus failed
handshakes (plain HTTP sent to the TLS port). Prints the server's CPU time (user + system,
from /proc/PID/stat, so the client's share and the machine's load count less than wall
time would) per 1,000 requests, and its RSS before and after each phase.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import trustme

POLICY = b"version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n"
GET = b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n\r\n"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextlib.contextmanager
def server(directory: Path, *options: str) -> Iterator[tuple[int, int]]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-c", "from mtasts.cli.main import main; main()", "serve"]
    command += ["policy", "--dir", str(directory), "--listen", f"127.0.0.1:{port}", *options]
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.05)
        yield proc.pid, port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def phase(label: str, pid: int, count: int, one: Callable[[int], None]) -> None:
    before_cpu, before_rss = cpu_seconds(pid), rss_mib(pid)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(count)))
    wall = time.monotonic() - started
    cpu = cpu_seconds(pid) - before_cpu
    print(
        f"{label:<28} {count:>6}   server CPU {cpu / count * 1000:6.2f} s per 1,000"
        f"   wall {count / wall:6.0f}/s   RSS {before_rss:6.1f} -> {rss_mib(pid):6.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--bogus", type=int, default=10000)
    parser.add_argument(
        "--no-limit-options",
        action="store_true",
        help="for a tree before the per-client limits (it has no such options)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "example.com.txt").write_bytes(POLICY)
        ca = trustme.CA()
        ca.issue_cert("mta-sts.example.com").private_key_and_cert_chain_pem.write_to_path(
            str(directory / "c.pem")
        )
        client = ssl.create_default_context()
        ca.configure_trust(client)

        def fetch(port: int, tls: bool) -> Callable[[int], None]:
            def one(_: int) -> None:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
                    sock = (
                        client.wrap_socket(raw, server_hostname="mta-sts.example.com")
                        if tls
                        else raw
                    )
                    sock.sendall(GET)
                    answer = b""
                    while data := sock.recv(4096):
                        answer += data
                    assert answer.startswith(b"HTTP/1.1 200 OK"), answer[:40]

            return one

        def bogus(port: int) -> Callable[[int], None]:
            def one(_: int) -> None:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                    sock.sendall(GET)
                    while sock.recv(4096):
                        pass

            return one

        cert = ("--cert", str(directory / "c.pem"), "--key", str(directory / "c.pem"))
        with server(directory) as (pid, port):
            phase("plain HTTP GET", pid, args.requests, fetch(port, tls=False))
        limits = () if args.no_limit_options else ("--max-per-client", "0", "--client-rate", "0")
        with server(directory, *cert, *limits) as (pid, port):
            phase("HTTPS GET", pid, args.requests, fetch(port, tls=True))
            phase("failed TLS handshakes", pid, args.bogus, bogus(port))


if __name__ == "__main__":
    main()
