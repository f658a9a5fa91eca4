"""Socketmap load client: N connections, each one request at a time (as Postfix's smtp(8)).

    python bench/socketmap_load.py HOST:PORT KEY CONNECTIONS SECONDS [PROCESSES] [once]

Spreads the connections over PROCESSES worker processes (default: min(connections, 4)),
each driving its connections with non-blocking sockets and epoll, so that the client is
cheap per request. Prints one JSON line: requests, seconds, rps, p50/p99/max in ms.

KEY ``@FILE``: the keys of FILE, one per line, in that order (worker ``i`` of ``P``
takes every ``P``-th key from the ``i``-th on) and over again until SECONDS are up; with
``once``, each key is sent once and the run ends when all are answered (a warm-up).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import select
import socket
import sys
import time


def _request(key: str) -> bytes:
    payload = f"postfix {key}".encode()
    return b"%d:%s," % (len(payload), payload)


def _complete(buf: bytes) -> bool:
    colon = buf.find(b":")
    return colon > 0 and len(buf) >= colon + 1 + int(buf[:colon]) + 1


def _requests(key: str, index: int, procs: int) -> list[bytes]:
    if not key.startswith("@"):
        return [_request(key)]
    with open(key[1:]) as lines:
        keys = [line.strip() for line in lines if line.strip()]
    return [_request(k) for k in keys[index::procs]]


def worker(
    addr: tuple[str, int],
    key: str,
    conns: int,
    seconds: float,
    out: mp.Queue,  # type: ignore[type-arg]
    index: int = 0,
    procs: int = 1,
    once: bool = False,
) -> None:
    requests = _requests(key, index, procs)
    count = len(requests)
    position = 0

    def next_request() -> bytes | None:
        nonlocal position
        if once and position >= count:
            return None
        request = requests[position % count]
        position += 1
        return request

    ep = select.epoll()
    socks: dict[int, socket.socket] = {}
    sent_at: dict[int, int] = {}
    bufs: dict[int, bytes] = {}
    for _ in range(conns):
        s = socket.create_connection(addr)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    latencies: list[int] = []
    stop = time.perf_counter_ns() + int(seconds * 1e9)
    clock = time.perf_counter_ns
    for fd, s in socks.items():
        first = next_request()
        if first is None:
            ep.unregister(fd)
            continue
        sent_at[fd] = clock()
        bufs[fd] = b""
        s.send(first)
    while True:
        for fd, _ in ep.poll(1.0):
            s = socks[fd]
            data = s.recv(65536)
            if not data:
                raise SystemExit("daemon closed the connection")
            buf = bufs[fd] + data
            if not _complete(buf):
                bufs[fd] = buf
                continue
            now = clock()
            latencies.append(now - sent_at[fd])
            bufs[fd] = b""
            request = next_request() if now < stop else None
            if request is not None:
                sent_at[fd] = now
                s.send(request)
            else:
                ep.unregister(fd)
                del sent_at[fd]
        if not sent_at:
            break
    out.put(latencies)
    for s in socks.values():
        s.close()


def main() -> None:
    host, port = sys.argv[1].rsplit(":", 1)
    key, conns, seconds = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    procs = int(sys.argv[5]) if len(sys.argv) > 5 else min(conns, 4)
    once = len(sys.argv) > 6 and sys.argv[6] == "once"
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    share = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
    started = time.perf_counter()
    workers = [
        mp.Process(target=worker, args=((host, int(port)), key, n, seconds, out, i, procs, once))
        for i, n in enumerate(share)
    ]
    for w in workers:
        w.start()
    latencies: list[int] = []
    for _ in workers:
        latencies += out.get()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    print(
        json.dumps(
            {
                "requests": n,
                "seconds": round(elapsed, 3),
                "rps": round(n / (elapsed if once else seconds)),
                "p50_ms": round(latencies[n // 2] / 1e6, 3),
                "p99_ms": round(latencies[int(n * 0.99)] / 1e6, 3),
                "max_ms": round(latencies[-1] / 1e6, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
