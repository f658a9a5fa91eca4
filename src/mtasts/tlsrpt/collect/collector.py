"""The collector daemon: a drop-in replacement for tlsrpt-collectd.

It binds the unix datagram socket Postfix's libtlsrpt writes to
(``smtp_tlsrpt_socket_name``) and reads it in one thread with blocking ``recv_into``
into one preallocated 1 MiB buffer, decoding with orjson (asyncio's stock datagram
endpoint allocates 256 KiB per datagram and is ~10x slower: architecture guide,
performance table; Linux's default queue of 10 datagrams makes a wake-up per few
datagrams the common case, and a blocking read is the cheapest wake-up). The asyncio
side only flushes.

Most datagrams are byte-identical (a success carries no per-session data), so the
receive loop does the least it can per datagram: it takes the UTC day and increments a
counter keyed by (day, raw bytes) in a plain dict, the *raw batch*. Each distinct
(day, bytes) is decoded, validated and added to the real counters once, when the batch
is folded: at every flush (every ``flush_interval`` seconds or ``flush_every``
datagrams, and on SIGTERM / SIGINT before it exits), which then writes the counters to
the store in one transaction. A malformed datagram is therefore rejected (counted and
logged with its reason, once per distinct datagram and day with how many arrived) when
its batch is folded, not when it arrives.

Stop-and-restart safe: counters are added to the store (upsert +n), never overwritten,
so a restart carries on. The way to the store is :class:`~.flusher.CounterFlusher`'s: a
failed flush keeps the counters in memory and reconnects with back-off, and a SIGTERM
while the store is down writes them to a spool file that the next start replays (the
process then exits 1 and says so).

Stopping closes the socket's receive side first (``shutdown(SHUT_RD)``: from then on a
sender gets EPIPE at once, as when no collector runs), then reads every datagram still
queued, then flushes: a datagram the kernel accepted is counted. A datagram sent while
the collector is not running is lost: libtlsrpt sends with MSG_DONTWAIT and keeps no
spool of its own (the same as tlsrpt-collectd).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from mtasts.clock import Clock, wall
from mtasts.errors import ConfigError, TlsRptError, listen_failed
from mtasts.redact import redacted
from mtasts.runtime import on_stop_signals
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import MAX_DATAGRAM, SessionOutcome, decode_datagram
from mtasts.tlsrpt.collect.flusher import (
    MAX_PENDING,
    Backoff,
    CounterFlusher,
    ShutdownResult,
)
from mtasts.tlsrpt.retention import Retention
from mtasts.tlsrpt.store import TlsRptStore

log = logging.getLogger(__name__)

RCVBUF = 8 << 20  # kernel queue: absorbs bursts while a flush runs
# max_pending: the memory counters waiting for a flush may hold (Counters.weight, an
# upper bound of their Python memory: counters.outcome_weight). A flush normally empties
# them every few seconds or 10,000 sessions; the bound matters when the store is down or
# slow while a flood of distinct (hostile) domains arrives: past it, a session that needs
# a new counter is rejected ("collect.counters-full", logged once until a flush
# succeeds) while sessions of known counters are still counted. With --max-memory 256
# MiB it is ~150 MiB, ~88,000 sessions of distinct real-sized STS failures.
# The raw batch takes its share of that bound: 1/RAW_SHARE of it (~5 MiB, ~8,000 distinct
# real-sized datagrams); past it, a datagram not yet in the raw batch is decoded and
# counted at once (as before the raw batch existed) and an early fold is asked for; so
# the counters may hold max_pending - max_pending // RAW_SHARE. (While a fold decodes, the
# batch it took and the new one coexist: up to twice the share, for a moment.)
RAW_SHARE = 32
# The process's own memory bound (``--max-memory``): the counters and the raw batch get
# what is left of it after the resident memory at start (the interpreter, its modules,
# the store's driver: ~55 MB) and RESERVE, which covers what the process needs besides
# them at their worst: the decoder's caches (datagram.py: ~22 MB of decoded datagrams,
# ~13 MB of names), a fold's decoded batch (up to two raw-batch shares), a flush's rows
# (tlsrpt.store.FLUSH_CHUNK at a time: a few MB) and the allocator's slack. Checked as
# peak RSS (VmHWM) under a flood of a million distinct datagrams, store down and up:
# bench/collect_memory.py, docs/benchmarks.md.
MAX_MEMORY = 256 << 20
RESERVE = 48 << 20
# Memory of one raw-batch entry beyond its datagram's bytes: the bytes object's header,
# the (day, bytes) tuple, the dict slot and its int (measured ~120 bytes, tracemalloc).
RAW_OVERHEAD = 160


def process_rss() -> int:
    """Resident memory of this process in bytes (Linux /proc; elsewhere the peak)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def utc_day(now: float) -> tuple[date, float]:
    """The UTC day of Unix time ``now`` and the Unix time its next day starts."""
    day = datetime.fromtimestamp(now, UTC).date()
    return day, datetime.combine(day + timedelta(days=1), time(0), UTC).timestamp()


@dataclass(slots=True)
class CollectorStats:
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    flushes: int = 0
    upserts: int = 0
    # What the last shutdown left outside the store (spooled or lost); None while running.
    shutdown: ShutdownResult | None = None


def bind_socket(path: Path, mode: int = 0o666) -> socket.socket:
    """Bind a non-blocking AF_UNIX SOCK_DGRAM socket at ``path`` (a stale socket file is
    replaced; any other existing file is an error)."""
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise ConfigError(
                f"{path} exists and is not a socket: remove it or choose another --socket",
                code="collect.socket-path",
            )
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise listen_failed(f"unix:{path}", exc) from exc
    # Postfix's smtp(8) runs as the postfix user: it must be able to write to the socket.
    os.chmod(path, mode)
    sock.setblocking(False)
    return sock


def _decode(data: bytes) -> SessionOutcome | TlsRptError:
    """The datagram's session, or the error that rejects it."""
    try:
        return decode_datagram(data)
    except TlsRptError as exc:
        return exc


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class Collector:
    """Counts libtlsrpt datagrams from ``sock`` into ``store``."""

    def __init__(
        self,
        sock: socket.socket,
        store: TlsRptStore,
        *,
        flush_interval: float = 5.0,
        flush_every: int = 10_000,
        clock: Clock = wall,
        max_pending: int = MAX_PENDING,
        spool: Path | None = None,
        backoff: Backoff | None = None,
        max_memory: int | None = None,
        keep_days: int | None = None,
    ) -> None:
        self.sock = sock
        # The datagram carries no time: a session counts on the collector's UTC day at
        # receipt (as tlsrpt-collectd does). The clock is read for every datagram.
        self.clock = clock
        self.max_pending = max_pending
        self._raw_max = max_pending // RAW_SHARE
        self.store = store
        self.flush_interval = flush_interval
        self.flush_every = flush_every
        # The counters and their way to the store; they may hold what the raw batch does
        # not take of max_pending.
        self.flusher = CounterFlusher(
            store,
            spool=spool,
            max_pending=max_pending - self._raw_max,
            backoff=backoff or Backoff(),
            wall=clock,
        )
        # Given, the process's bound: max_pending is derived from it at run() (what the
        # resident memory at start and RESERVE leave).
        self.max_memory = max_memory
        self.stats = CollectorStats()
        # [tlsrpt] keep_days: older days are deleted once the store is reached, then once
        # a UTC day (a store only collectors write must not grow for ever)
        self.retention = Retention(store, keep_days)
        self._oversized = 0  # datagrams over MAX_DATAGRAM since the last fold (logged then)
        # The raw batch: (UTC day, datagram bytes) -> datagrams received, not yet decoded.
        self._raw: dict[tuple[date, bytes], int] = {}
        self._raw_weight = 0  # bytes of its keys + RAW_OVERHEAD each
        self._received = 0  # datagrams since the last flush (asks for one at flush_every)
        self._flush_asked = False
        self._fold_asked = False  # the raw batch is full: fold it before the next flush
        # One byte more than the limit, so a full buffer means the kernel truncated; 1 MiB
        # exactly (an odd size makes every recv_into ~3x slower on Linux, measured).
        self._buf = bytearray(MAX_DATAGRAM + 1)
        self._view = memoryview(self._buf)
        self._stop = asyncio.Event()
        self._readable = asyncio.Event()
        self._lock = threading.Lock()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def _budget(self) -> None:
        """max_pending from max_memory: what the memory resident now (modules loaded, the
        store opened) and RESERVE leave; at least an eighth of max_memory (said so)."""
        if self.max_memory is None:
            return
        rss = process_rss()
        budget = self.max_memory - rss - RESERVE
        if budget < self.max_memory // 8:
            log.warning(
                "--max-memory %d MiB leaves %d MiB for counters after the %d MiB in use at "
                "start and %d MiB reserved: using %d MiB (the bound will not hold)",
                self.max_memory >> 20,
                budget >> 20,
                rss >> 20,
                RESERVE >> 20,
                self.max_memory >> 23,
            )
            budget = self.max_memory // 8
        with self._lock, self.flusher.lock:
            self.max_pending = budget
            self._raw_max = budget // RAW_SHARE
            self.flusher.max_pending = budget - self._raw_max

    @property
    def counters(self) -> Counters:
        """The counters waiting for the store (the flusher's)."""
        return self.flusher.counters

    @property
    def raw_weight(self) -> int:
        """Bytes the raw batch holds (its datagrams + RAW_OVERHEAD each): at most
        ``max_pending // RAW_SHARE``."""
        return self._raw_weight

    def _receive(self, key: tuple[date, bytes], *, too_large: bool = False) -> None:
        """Add the datagram ``key`` = (day, bytes) to the raw batch (caller holds the lock).

        The receive loop inlines the common case (a datagram already in the batch)."""
        self._received += 1
        day, data = key
        size = len(data)
        if too_large or size > MAX_DATAGRAM:
            # The buffer is one byte larger than the limit: a full buffer means the kernel
            # truncated a bigger datagram. (Not copied: rejected as it arrives, logged with
            # a count at the next fold.)
            self.stats.rejected["datagram.too-large"] += 1
            self._oversized += 1
            return
        raw = self._raw
        n = raw.get(key)
        if n is not None:
            raw[key] = n + 1
            return
        if self._raw_weight + size + RAW_OVERHEAD <= self._raw_max:
            raw[key] = 1
            self._raw_weight += size + RAW_OVERHEAD
            return
        # The raw batch is full (a flood of distinct datagrams): decode this one now, and
        # have the event loop fold the batch early.
        with self.flusher.lock:
            self._count(day, data, _decode(data), 1)
        if not self._fold_asked and self._loop is not None:
            self._fold_asked = True
            self._loop.call_soon_threadsafe(self._fold_early)

    def _count(self, day: date, data: bytes, outcome: SessionOutcome | TlsRptError, n: int) -> None:
        """Count ``n`` identical datagrams ``data`` of ``day`` (caller holds the lock and
        the flusher's lock)."""
        if isinstance(outcome, TlsRptError):
            self.stats.rejected[outcome.code] += n
            if n == 1:
                log.warning("%s", outcome)
            else:
                log.warning("%s (%d identical datagrams on %s)", outcome, n, day)
            return
        if self.flusher.add_locked(day, outcome, len(data), n):
            self.stats.accepted += n
        else:
            self.stats.rejected["collect.counters-full"] += n

    def drain_socket(self) -> int:
        """Read every queued datagram (non-blocking) into the raw batch; return how many."""
        n = 0
        day, _ = utc_day(self.clock())
        view = self._view
        with self._lock:
            while True:
                try:
                    size = self.sock.recv_into(view, 0, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return n
                except InterruptedError:
                    continue
                if size == 0 and self._closing:
                    continue  # our own wake-up datagram (stop)
                n += 1
                if size > MAX_DATAGRAM:
                    self._receive((day, b""), too_large=True)
                else:
                    self._receive((day, view[:size].tobytes()))

    def _receive_forever(self) -> None:
        """The receiver thread: blocking reads, so each datagram costs one system call and
        a waiting collector is woken by the kernel directly (no event-loop round trip)."""
        recv_into = self.sock.recv_into
        view = self._view
        clock = self.clock
        lock = self._lock
        flush_every = self.flush_every
        day, next_day = utc_day(clock())
        while not self._closing:
            try:
                size = recv_into(view)
            except InterruptedError:
                continue
            except OSError:
                if self._closing:
                    return
                raise
            if self._closing and size == 0:
                return  # the wake-up datagram from stop()
            # Checked per datagram (a clock read is ~50 ns): at a few datagrams a day,
            # checking every N datagrams counted sessions on a day long past.
            now = clock()
            if now >= next_day:
                day, next_day = utc_day(now)
            if size > MAX_DATAGRAM:
                with lock:
                    self._receive((day, b""), too_large=True)
                continue
            key = (day, view[:size].tobytes())
            with lock:
                # The hot path, inlined: a datagram already in the raw batch.
                raw = self._raw
                n = raw.get(key)
                if n is None:
                    self._receive(key)
                else:
                    raw[key] = n + 1
                    self._received += 1
                ask = self._received >= flush_every and not self._flush_asked
                if ask:
                    self._flush_asked = True
            if ask and self._loop is not None:
                self._loop.call_soon_threadsafe(self._readable.set)

    def fold(self) -> None:
        """Decode the raw batch into the counters: each distinct (day, bytes) once."""
        with self._lock:
            raw, self._raw = self._raw, {}
            self._raw_weight = 0
            self._fold_asked = False
        # Decoded outside the lock (pure), so the receiver keeps reading meanwhile.
        decoded = [(key, _decode(key[1]), n) for key, n in raw.items()]
        del raw
        with self._lock, self.flusher.lock:
            for (day, data), outcome, n in decoded:
                self._count(day, data, outcome, n)
            oversized, self._oversized = self._oversized, 0
        if oversized:
            # One line per fold for this kind, with the count (a flood of them must not
            # flood the log; the datagrams themselves are not kept).
            log.warning(
                "libtlsrpt datagram rejected: %d datagrams larger than %d bytes since the last "
                "flush (datagram.too-large)",
                oversized,
                MAX_DATAGRAM,
            )

    def _fold_early(self) -> None:
        # Not while a batch is on its way to the store: the counters lack its keys then,
        # so sessions of known counters would be refused as counters-full. flush() folds
        # when it is done.
        if not self.flusher.flushing:
            self.fold()

    async def flush(self) -> bool:
        """Fold the raw batch, then write the pending counters in one transaction (kept
        in memory if the store fails; during a back-off only the fold happens). True when
        the store took them."""
        with self._lock:
            self._received = 0
            self._flush_asked = False
        self.fold()
        ok = await self.flusher.flush()
        self._sync_stats()
        if self._fold_asked:
            self.fold()
        return ok

    async def _prune_if_due(self) -> None:
        """``keep_days``: prune once the store is reached, then on each new UTC day."""
        today, _ = utc_day(self.clock())
        if self.flusher.connected and self.retention.due(today):
            await self.retention.prune(today)

    def _sync_stats(self) -> None:
        self.stats.flushes = self.flusher.stats.flushes
        self.stats.upserts = self.flusher.stats.upserts

    def stop(self) -> None:
        self._stop.set()
        self._readable.set()

    async def run(self) -> None:
        """Serve until :meth:`stop` (SIGTERM/SIGINT when installed); before returning,
        read what is queued, flush, and spool what the store did not take
        (:attr:`CollectorStats.shutdown`)."""
        self._loop = asyncio.get_running_loop()
        self.flusher.replay()
        # The schema migrations (Alembic, ~7 MB) load at the first connection, which now
        # comes after the budget is measured: load them first so it counts them.
        import mtasts.store.migrate  # noqa: F401

        self._budget()
        self.sock.setblocking(True)
        thread = threading.Thread(target=self._receive_forever, name="tlsrpt-recv", daemon=True)
        thread.start()
        # The store is reached once the receiver runs: a store that takes its time (a
        # connect timeout) must not leave Postfix's datagrams to the kernel's short queue.
        connect = asyncio.create_task(self.flusher.connect())
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._readable.wait(), self.flush_interval)
                self._readable.clear()
                if await self.flush():
                    await self._prune_if_due()
        finally:
            if not connect.done():
                connect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connect
            self._closing = True
            # No datagram can be queued after this (senders get EPIPE), and the blocked
            # receiver wakes up with an empty read; so the drain below reads the last one.
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RD)
            await asyncio.to_thread(thread.join, 5)
            self.drain_socket()
            self.fold()
            self.stats.shutdown = await self.flusher.shutdown()
            self._sync_stats()


def default_spool(store_url: str) -> Path:
    """The spool beside a SQLite store's file (``FILE.spool``), else ``[tlsrpt.collect]
    spool``'s default (a PostgreSQL store)."""
    from mtasts.store.engine import parse_store_url
    from mtasts.tlsrpt.settings import DEFAULT_SPOOL

    kind, target = parse_store_url(store_url)
    if kind == "sqlite" and target != ":memory:":
        return Path(f"{target}.spool")
    return Path(DEFAULT_SPOOL)


def _say_what_was_left(left: ShutdownResult | None) -> None:
    """An error line when the store did not take the last counters at shutdown."""
    if left is None or left.complete:
        return
    if left.spool is not None:
        log.error(
            "the TLS-RPT store was down at shutdown (%s): %d sessions in %d counters "
            "written to the spool %s; the next start replays them",
            left.error,
            left.sessions,
            left.counters,
            left.spool,
        )
    else:
        log.error(
            "the TLS-RPT store was down at shutdown (%s): %d sessions in %d counters are LOST",
            left.error,
            left.sessions,
            left.counters,
        )


async def serve(
    socket_path: Path,
    store_url: str,
    *,
    flush_interval: float = 5.0,
    socket_mode: int = 0o666,
    spool: Path | None = None,
    max_memory: int = MAX_MEMORY,
    keep_days: int | None = None,
    ready: asyncio.Event | None = None,
) -> CollectorStats:
    """Run the collector daemon on ``socket_path`` until SIGTERM; return its statistics
    (``shutdown`` says what the store did not take). A store that is down at start is
    retried in the background: counting starts at once."""
    store = TlsRptStore.open(store_url)
    sock = bind_socket(socket_path, socket_mode)
    collector = Collector(
        sock,
        store,
        flush_interval=flush_interval,
        spool=spool,
        max_memory=max_memory,
        keep_days=keep_days,
    )
    log.info(
        "ready: counting libtlsrpt datagrams on unix:%s (mode %o); store %s; spool %s; "
        "keep_days %s",
        socket_path,
        socket_mode,
        redacted(store_url),
        spool or "none",
        keep_days or "unset (kept for ever)",
    )
    if ready is not None:
        ready.set()
    # the stop signals stay handled until the store is closed: a second SIGTERM during
    # the close (up to 5 s) stops nothing more instead of killing the process
    with on_stop_signals(collector.stop):
        try:
            await collector.run()
        finally:
            sock.close()
            _remove(socket_path)
            try:
                await asyncio.wait_for(store.close(), 5)
            except Exception:  # a broken connection: nothing is left to write on it
                await store.reset()
    _say_what_was_left(collector.stats.shutdown)
    return collector.stats
