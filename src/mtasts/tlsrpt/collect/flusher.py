"""Pending TLS-RPT counters on their way to the store, through outages and restarts.

Whatever counts TLS-RPT sessions (the datagram collector, or the Postfix policy daemon
counting its own policy-fetch failures) pre-aggregates them here and lets this class
deliver them::

    flusher = CounterFlusher(TlsRptStore.open(url), spool=Path("/var/lib/mtasts/x.spool"))
    await flusher.start()                # replays the spool a previous shutdown left,
                                         # then reaches the store (a server that must not
                                         # wait for it: replay(), then connect() as a task)
    flusher.add(day, outcome)            # any thread; False if the memory bound refused it
    await flusher.flush()                # every few seconds (or: await flusher.run(stop))
    result = await flusher.shutdown()    # last flush; spooled if the store is still down
    await store.close()

What it promises:

* **An outage loses no count.** A failed flush puts its batch back, abandons the
  database connection (:meth:`TlsRptStore.reset`: a PostgreSQL connection the server
  terminated, or a SQLite one that failed, is reopened on the next attempt) and retries
  with exponential back-off (1 s doubling to 60 s); :meth:`flush` between two attempts
  returns at once. Meanwhile counting goes on in memory within ``max_pending``; the
  first flush that succeeds writes everything in one transaction. One log line when the
  store goes away, a few while it stays away (attempts 2, 4, 8, ...), one when it is
  back; never a traceback.
* **A shutdown with the store down loses no count either**: :meth:`shutdown` tries once
  more, then writes the pending counters to the spool file (JSON Lines, written to a
  temporary file, fsynced and renamed into place) and says so in its result; the next
  :meth:`start` reads the spool back into memory, and the spool is deleted once a flush
  has put those counters in the store.
* **Bounded memory**: counters that would need a new key are refused once the pending
  ones (plus a batch in flight) weigh ``max_pending`` (``Counters.weight``); sessions of
  existing keys are always counted.

At-least-once, not exactly-once: a flush whose COMMIT reached the database but whose
answer was lost (the connection dropped in that instant) is retried and counted twice;
so is a spool whose counters were flushed when the process was killed (SIGKILL) before
it deleted the file. Both windows are a few milliseconds; losing a day's counts to an
outage is the worse failure for a report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from mtasts.clock import Clock, monotonic, wall
from mtasts.errors import TlsRptError
from mtasts.tlsrpt.collect.counters import Counters, read_spool, spool_lines
from mtasts.tlsrpt.collect.datagram import SessionOutcome
from mtasts.tlsrpt.store import TlsRptStore

log = logging.getLogger(__name__)

# The memory the pending counters may hold (Counters.weight, bytes): see collector.py.
MAX_PENDING = 256 << 20


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds between two attempts after ``failures`` consecutive failed ones."""

    first: float = 1.0
    maximum: float = 60.0

    def delay(self, failures: int) -> float:
        return min(self.maximum, self.first * 2.0 ** min(max(failures - 1, 0), 32))


@dataclass(slots=True)
class FlushStats:
    flushes: int = 0  # successful flushes that wrote something
    upserts: int = 0
    failed_attempts: int = 0
    dropped: int = 0  # sessions refused by the memory bound
    replayed: int = 0  # sessions read back from the spool at start


@dataclass(frozen=True, slots=True)
class ShutdownResult:
    """What :meth:`CounterFlusher.shutdown` left outside the store."""

    sessions: int = 0  # sessions not written to the store
    counters: int = 0
    spool: Path | None = None  # where they are, if they were spooled
    error: str = ""  # why the store did not take them (or why the spool failed)

    @property
    def complete(self) -> bool:
        """True when the store holds every session that was counted."""
        return self.sessions == 0


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text[:300]}" if text else name


class CounterFlusher:
    """Pending counters, flushed to ``store`` with reconnect and back-off, spooled to
    ``spool`` at shutdown if the store is down (see the module docstring)."""

    def __init__(
        self,
        store: TlsRptStore,
        *,
        spool: Path | None = None,
        max_pending: int = MAX_PENDING,
        backoff: Backoff | None = None,
        attempt_timeout: float = 60.0,
        shutdown_timeout: float = 15.0,
        monotonic: Clock = monotonic,
        wall: Clock = wall,
    ) -> None:
        self.store = store
        self.spool = spool
        self.max_pending = max_pending
        self.backoff = backoff or Backoff()
        self.attempt_timeout = attempt_timeout
        self.shutdown_timeout = shutdown_timeout
        self.monotonic = monotonic
        self.wall = wall  # names an unreadable spool set aside
        # Guards counters and in_flight: add() may be called from any thread.
        self.lock = threading.Lock()
        self.counters = Counters()
        self.in_flight = 0  # weight of the batch being written (back in memory if it fails)
        self.stats = FlushStats()
        self._flush_lock = asyncio.Lock()
        self._failures = 0  # consecutive failed attempts
        self._retry_at = 0.0
        self._down_since = 0.0
        self._error = ""
        self._created = False
        self._spool_unflushed = False  # counters read from the spool are not in the store yet
        self._full_logged = False

    # --- counting (any thread) ------------------------------------------------------------

    @property
    def store_up(self) -> bool:
        """False from a failed attempt until the next successful one."""
        return self._failures == 0

    @property
    def flushing(self) -> bool:
        return self._flush_lock.locked()

    def add(self, day: date, outcome: SessionOutcome, size: int = 0, n: int = 1) -> bool:
        """Count ``n`` sessions ``outcome`` on ``day`` (``size``: the bytes it came in, for
        the memory estimate). False if the memory bound refused it (logged once)."""
        with self.lock:
            return self.add_locked(day, outcome, size, n)

    def add_locked(self, day: date, outcome: SessionOutcome, size: int = 0, n: int = 1) -> bool:
        """:meth:`add` for a caller that holds :attr:`lock` (to add many at once)."""
        counters = self.counters
        if counters.weight + self.in_flight >= self.max_pending and not counters.known(
            day, outcome
        ):
            self.stats.dropped += n
            if not self._full_logged:
                self._full_logged = True
                log.warning(
                    "TLS-RPT counters waiting for the store hold %d bytes (max %d): sessions "
                    "that need a new counter are dropped until a flush succeeds",
                    counters.weight + self.in_flight,
                    self.max_pending,
                )
            return False
        counters.add(day, outcome, size, n)
        return True

    # --- the store (event loop) ---------------------------------------------------------

    async def start(self) -> None:
        """:meth:`replay`, then :meth:`connect`."""
        self.replay()
        await self.connect()

    @property
    def connected(self) -> bool:
        """Whether the store was reached (its tables created) by this process."""
        return self._created

    async def connect(self) -> None:
        """Open the store and create its tables now, to say at once if it is down (it is
        then retried with back-off; no error). The first flush does it otherwise."""
        async with self._flush_lock:
            if self._created:
                return
            try:
                await asyncio.wait_for(self.store.create(), self.attempt_timeout)
                self._created = True
            except Exception as exc:
                await self._failed(exc)

    def replay(self) -> None:
        """Read the spool a previous shutdown left (if any) into memory; it is deleted
        after the flush that writes its counters."""
        if self.spool is not None:
            self._replay(self.spool)

    def _replay(self, spool: Path) -> None:
        replayed = Counters()
        try:
            with spool.open("rb") as f:
                sessions = read_spool(f, replayed)
        except FileNotFoundError:
            return
        except (OSError, TlsRptError) as exc:
            aside = spool.with_name(f"{spool.name}.invalid-{int(self.wall())}")
            with contextlib.suppress(OSError):
                spool.rename(aside)
            log.error(
                "TLS-RPT counter spool %s cannot be read (%s): moved to %s, not counted",
                spool,
                exc,
                aside,
            )
            return
        with self.lock:
            replayed.merge(self.counters)
            self.counters = replayed
        self._spool_unflushed = True
        self.stats.replayed += sessions
        log.warning(
            "replaying %d TLS-RPT sessions (%d counters) from the spool %s written when the "
            "store was down at the last shutdown",
            sessions,
            len(replayed),
            spool,
        )

    async def flush(self, *, force: bool = False) -> bool:
        """Write the pending counters in one transaction. Returns True when that worked
        (or there was nothing to write); False if the store failed, the back-off delay
        since the last failure has not passed, or another flush or connection attempt is
        under way (``force`` tries anyway, after that one)."""
        if self._flush_lock.locked() and not force:
            return False
        async with self._flush_lock:
            return await self._flush(force, self.attempt_timeout)

    async def _flush(self, force: bool, limit: float) -> bool:
        if self._failures and not force and self.monotonic() < self._retry_at:
            return False
        with self.lock:
            if not self.counters:
                return True
            batch = self.counters.drain()
            self.in_flight = batch.weight
        try:
            if not self._created:
                await asyncio.wait_for(self.store.create(), limit)
                self._created = True
            upserts = await asyncio.wait_for(self.store.add_counters(batch), limit)
        except BaseException as exc:
            with self.lock:
                # Back into memory (the big batch takes the few new counters, not the
                # other way round: no second copy of the big one).
                batch.merge(self.counters)
                self.counters = batch
                self.in_flight = 0
            if not isinstance(exc, Exception):
                raise  # cancelled: the counters are kept, the caller decides
            await self._failed(exc, batch.distinct)
            return False
        with self.lock:
            self.in_flight = 0
            self._full_logged = False
        self.stats.flushes += 1
        self.stats.upserts += upserts
        if self._failures:
            log.warning(
                "TLS-RPT store is back after %.0f s and %d failed attempts: %d sessions written",
                self.monotonic() - self._down_since,
                self._failures,
                batch.sessions,
            )
            self._failures = 0
        if self._spool_unflushed and self.spool is not None:
            self._spool_unflushed = False
            try:
                self.spool.unlink(missing_ok=True)
            except OSError as exc:
                log.error(
                    "cannot delete the TLS-RPT spool %s after flushing it (%s): delete it "
                    "before the next start, or its sessions are counted twice",
                    self.spool,
                    exc,
                )
        return True

    async def _failed(self, exc: Exception, counters: int = 0) -> None:
        await self.store.reset()  # the next attempt reconnects
        self.stats.failed_attempts += 1
        self._failures += 1
        if self._failures == 1:
            self._down_since = self.monotonic()
        delay = self.backoff.delay(self._failures)
        self._retry_at = self.monotonic() + delay
        self._error = _describe(exc) if not isinstance(exc, TimeoutError) else "timed out"
        # Attempts 1, 2, 4, 8, ...: an outage of hours logs a dozen lines, not thousands.
        if self._failures & (self._failures - 1) == 0:
            log.warning(
                "TLS-RPT store unavailable (%s; attempt %d): %d counters kept in memory, "
                "next attempt in %.0f s",
                self._error,
                self._failures,
                counters or self.counters.distinct,
                delay,
            )

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Flush every ``interval`` seconds until ``stop`` is set (then return; call
        :meth:`shutdown` next)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
            if not stop.is_set():
                await self.flush()

    async def shutdown(self) -> ShutdownResult:
        """Flush once more (even during a back-off, for at most ``shutdown_timeout``);
        if the store still fails, write the pending counters to the spool."""
        async with self._flush_lock:
            for _ in range(3):  # (again if more were counted while a flush was running)
                if not await self._flush(True, self.shutdown_timeout):
                    break
                with self.lock:
                    if not self.counters:
                        return ShutdownResult()
            with self.lock:
                pending, self.counters = self.counters, Counters()
            error = self._error or "the store did not answer"
            if self.spool is None:
                self.counters = pending
                return ShutdownResult(pending.sessions, len(pending), None, error)
            try:
                await asyncio.to_thread(_write_spool, self.spool, pending)
            except OSError as exc:
                self.counters = pending
                return ShutdownResult(
                    pending.sessions,
                    len(pending),
                    None,
                    f"{error}; writing the spool {self.spool} failed too: {exc}",
                )
            self.counters = pending  # still the truth about this process
            return ShutdownResult(pending.sessions, len(pending), self.spool, error)


def _write_spool(path: Path, counters: Counters) -> None:
    """Write ``counters`` to ``path`` atomically (temporary file, fsync, rename, fsync of
    the directory): a crash leaves the old spool or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as f:
            for line in spool_lines(counters):
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
