"""The collector through database outages: a terminated PostgreSQL connection, a
PostgreSQL that is unreachable for a while, a locked SQLite file, and SIGTERM while the
store is down. Real PostgreSQL, real datagrams on a unix socket, and the real
`mtasts tlsrpt collect` process wherever signals matter."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from tests.commands import MTASTS
from tests.pg import PG_HOST, PG_PORT, PG_URL, require_pg

from mtasts.store.engine import SqliteDatabase
from mtasts.tlsrpt.collect.collector import Collector, bind_socket
from mtasts.tlsrpt.collect.flusher import Backoff, CounterFlusher
from mtasts.tlsrpt.store import TlsRptStore

from .datagrams import FAIL, OK, send_datagrams

# --- a schema of its own per test, reached directly or through a TCP forwarder the test
# can take down (an outage for this test's connections only: the shared server is never
# stopped) ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PgSchema:
    schema: str
    application_name: str  # every connection of the code under test carries it

    def url(self, host: str = PG_HOST, port: int = PG_PORT) -> str:
        return (
            f"postgresql://postgres@{host}:{port}/test"
            f"?search_path={self.schema}&application_name={self.application_name}"
        )

    async def terminate_backends(self) -> int:
        """pg_terminate_backend on this test's connections only; how many were ended."""
        import asyncpg

        conn = await asyncpg.connect(PG_URL)
        try:
            ended = await conn.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1) t",
                self.application_name,
            )
        finally:
            await conn.close()
        return int(ended)


@pytest.fixture
async def pg_schema() -> AsyncIterator[PgSchema]:
    require_pg()
    import asyncpg

    tag = uuid.uuid4().hex[:16]
    pg = PgSchema(f"t_{tag}", f"mtasts-test-{tag}")
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f"CREATE SCHEMA {pg.schema}")
    try:
        yield pg
    finally:
        await pg.terminate_backends()
        await conn.execute(f"DROP SCHEMA {pg.schema} CASCADE")
        await conn.close()


class PgForwarder:
    """127.0.0.1:<port> -> PostgreSQL. :meth:`down` aborts every connection through it and
    stops listening (clients get ECONNREFUSED); :meth:`up` listens on the same port again."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, PG_HOST, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                up_r, up_w = await asyncio.open_connection(PG_HOST, PG_PORT)
            except OSError:
                writer.transport.abort()
                return
            self._writers |= {writer, up_w}
            await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))
        finally:
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(Exception):
                dst.transport.abort()


@pytest.fixture
async def pg_forwarder() -> AsyncIterator[PgForwarder]:
    fwd = PgForwarder()
    await fwd.up()
    try:
        yield fwd
    finally:
        await fwd.down()


# --- the tests ---------------------------------------------------------------------------

FAST = Backoff(first=0.05, maximum=0.2)


async def _totals(url: str, *, schema: str | None = None) -> tuple[int, int, int]:
    """(successful, failed, failure-detail) sessions of today in the store at ``url``."""
    store = TlsRptStore.open(url, schema=schema)
    try:
        got = await store.load_day(datetime.now(UTC).date())
    except Exception as exc:
        if "does not exist" in str(exc) or "no such table" in str(exc):
            return 0, 0, 0  # the collector has not created its tables yet
        raise
    finally:
        await store.close()
    return sum(got.successes.values()), sum(got.failures.values()), sum(got.details.values())


async def _until(cond: object, what: str, wait: float = 60.0) -> None:
    deadline = time.monotonic() + wait
    while True:
        ok = cond() if callable(cond) else cond
        if asyncio.iscoroutine(ok):
            ok = await ok
        if ok:
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def _running(col: Collector, store: TlsRptStore) -> AsyncIterator[None]:
    """Run ``col`` in this event loop; stop it, close its socket and store, however the
    test ends."""
    task = asyncio.create_task(col.run())
    try:
        yield
    finally:
        col.stop()
        await task
        col.sock.close()
        await store.close()


_STARTED: list[asyncio.subprocess.Process | subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_collector_left_running() -> Iterator[None]:
    """A test that fails half-way must not leave its `mtasts tlsrpt collect` running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if isinstance(proc, subprocess.Popen):
            proc.wait(10)


class CollectProcess:
    """`mtasts tlsrpt collect` as its own process (asyncio subprocess)."""

    def __init__(self, sock: Path, store: str, spool: Path) -> None:
        self.sock, self.store, self.spool = sock, store, spool
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *MTASTS,
            "tlsrpt",
            "collect",
            "--socket",
            str(self.sock),
            "--store",
            self.store,
            "--spool",
            str(self.spool),
            "--flush-interval",
            "0.2",
            stderr=asyncio.subprocess.PIPE,
        )
        _STARTED.append(self.proc)
        proc = self.proc
        await _until(lambda: self.sock.exists() or proc.returncode is not None, "the socket", 30)
        assert proc.returncode is None, (await proc.communicate())[1].decode()

    async def stop(self) -> tuple[int, str]:
        """SIGTERM; (exit status, stderr)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(self.proc.communicate(), 60)
        assert self.proc.returncode is not None
        return self.proc.returncode, err.decode()


async def test_flusher_reconnects_after_pg_terminate_backend(pg_schema: PgSchema) -> None:
    """The API the collector and the daemon share: a flush after pg_terminate_backend on
    its connection reconnects, and the store ends with every session exactly once."""
    from mtasts.tlsrpt.collect.datagram import decode_datagram

    store = TlsRptStore.open(pg_schema.url())
    flusher = CounterFlusher(store, backoff=FAST)
    await flusher.start()
    day = datetime.now(UTC).date()
    for _ in range(5):
        assert flusher.add(day, decode_datagram(OK))
    assert await flusher.flush()
    assert await pg_schema.terminate_backends() == 1
    for _ in range(7):
        flusher.add(day, decode_datagram(OK))
    await _until(flusher.flush, "a flush after the terminated connection")
    assert (await flusher.shutdown()).complete
    await store.close()
    assert await _totals(pg_schema.url()) == (12, 0, 0)


async def test_collect_process_survives_pg_terminate_backend(
    tmp_path: Path, pg_schema: PgSchema
) -> None:
    """The incident: one pg_terminate_backend on the collector's connection used to make
    every later flush fail (with a traceback), and SIGTERM then dropped the counters and
    exited 0. Now the next flush reconnects and all 2 x 300 sessions reach the store."""
    col = CollectProcess(tmp_path / "tlsrpt.sock", pg_schema.url(), tmp_path / "c.spool")
    await col.start()
    await asyncio.to_thread(send_datagrams, col.sock, [OK] * 200 + [FAIL] * 100)
    await _until(lambda: _totals(pg_schema.url()), "the first flush")
    await _until(lambda: _wait_sum(pg_schema.url(), 300), "the first 300 sessions in the store")
    assert await pg_schema.terminate_backends() >= 1
    await asyncio.to_thread(send_datagrams, col.sock, [OK] * 200 + [FAIL] * 100)
    await _until(lambda: _wait_sum(pg_schema.url(), 600), "600 sessions in the store")
    status, err = await col.stop()
    assert status == 0, err
    assert "Traceback" not in err
    assert "600 datagrams counted" in err
    assert await _totals(pg_schema.url()) == (400, 200, 200)
    assert not col.spool.exists()


async def _wait_sum(url: str, n: int) -> bool:
    ok, bad, _ = await _totals(url)
    return ok + bad == n


async def test_pg_outage_keeps_counting_and_flushes_on_recovery(
    tmp_path: Path, pg_schema: PgSchema, pg_forwarder: PgForwarder
) -> None:
    """PostgreSQL unreachable (every connection cut, new ones refused) while datagrams
    arrive: they are counted in memory, flushes back off, and the first flush after
    the database is back writes all of them."""
    url = pg_schema.url(port=pg_forwarder.port)
    store = TlsRptStore.open(url)
    sock_path = tmp_path / "tlsrpt.sock"
    sock = bind_socket(sock_path)
    col = Collector(sock, store, flush_interval=0.05, backoff=FAST)
    async with _running(col, store):
        await asyncio.to_thread(send_datagrams, sock_path, [OK] * 100)
        await _until(lambda: _wait_sum(pg_schema.url(), 100), "100 sessions in the store")
        await pg_forwarder.down()
        await asyncio.to_thread(send_datagrams, sock_path, [OK] * 150 + [FAIL] * 50)
        await _until(lambda: col.counters.sessions == 200, "200 sessions counted in memory")
        await _until(lambda: col.flusher.stats.failed_attempts >= 3, "three failed attempts")
        assert not col.flusher.store_up
        assert await _totals(pg_schema.url()) == (100, 0, 0)
        await pg_forwarder.up()
        await _until(lambda: _wait_sum(pg_schema.url(), 300), "300 sessions in the store")
        assert col.flusher.store_up
    assert col.stats.shutdown is not None
    assert col.stats.shutdown.complete
    assert await _totals(pg_schema.url()) == (250, 50, 50)


async def test_sigterm_with_pg_down_spools_and_the_next_start_replays(
    tmp_path: Path, pg_schema: PgSchema, pg_forwarder: PgForwarder
) -> None:
    """SIGTERM while PostgreSQL is unreachable: the counters go to the spool file, the
    process says so in one line and exits 1; the next start (database back) replays the
    spool, flushes it with the new sessions and deletes it: nothing lost, nothing twice."""
    url = pg_schema.url(port=pg_forwarder.port)
    col = CollectProcess(tmp_path / "tlsrpt.sock", url, tmp_path / "state" / "c.spool")
    await col.start()
    await asyncio.to_thread(send_datagrams, col.sock, [OK] * 40)
    await _until(lambda: _wait_sum(pg_schema.url(), 40), "40 sessions in the store")
    await pg_forwarder.down()
    await asyncio.to_thread(send_datagrams, col.sock, [OK] * 70 + [FAIL] * 30)
    await asyncio.sleep(0.5)  # (a few failed flushes; the datagrams are queued or read)
    status, err = await col.stop()
    assert status == 1, err
    assert "Traceback" not in err
    spooled = [line for line in err.splitlines() if "spool" in line and "ERROR" in line]
    assert len(spooled) == 1, err
    assert "100 sessions in 3 counters written to the spool" in spooled[0]
    assert col.spool.exists()
    assert await _totals(pg_schema.url()) == (40, 0, 0)

    await pg_forwarder.up()
    await col.start()
    await asyncio.to_thread(send_datagrams, col.sock, [FAIL] * 5)
    await _until(lambda: _wait_sum(pg_schema.url(), 145), "145 sessions in the store")
    status, err = await col.stop()
    assert status == 0, err
    assert "replaying 100 TLS-RPT sessions" in err
    assert not col.spool.exists()
    assert await _totals(pg_schema.url()) == (110, 35, 35)


async def test_sqlite_locked_by_another_process_is_retried_with_backoff(
    tmp_path: Path,
) -> None:
    """aiosqlite: another process holds the database's exclusive lock (a backup, a
    vacuum): flushes fail and back off, the connection is reopened, the sessions stay in
    memory, and they are written once the lock is released."""
    path = tmp_path / "c.db"
    store = TlsRptStore(SqliteDatabase(str(path), busy_timeout_ms=50))
    await store.create()
    sock_path = tmp_path / "tlsrpt.sock"
    sock = bind_socket(sock_path)
    col = Collector(sock, store, flush_interval=0.05, backoff=FAST)
    async with _running(col, store):
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            await asyncio.to_thread(send_datagrams, sock_path, [OK] * 60 + [FAIL] * 40)
            await _until(lambda: col.flusher.stats.failed_attempts >= 3, "three failures")
            assert col.counters.sessions == 100
        finally:
            holder.execute("COMMIT")
            holder.close()
        await _until(lambda: col.flusher.store_up and not col.counters, "the flush after it")
    assert await _totals(f"sqlite:///{path}") == (60, 40, 40)


def _flood_until_refused(path: Path, sent: list[int], stop: threading.Event) -> None:
    """Send OK datagrams non-blocking as fast as the socket takes them; count each one
    the kernel accepted; return when the collector refuses (EPIPE) or is gone."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        while not stop.is_set():
            try:
                s.sendto(OK, str(path))
            except BlockingIOError:
                time.sleep(0.0005)
                continue
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.ENOENT, errno.ECONNREFUSED):
                    return
                raise
            sent[0] += 1


async def test_sigterm_counts_every_datagram_the_kernel_accepted(tmp_path: Path) -> None:
    """A sender floods the socket while SIGTERM arrives: every datagram whose sendto()
    succeeded is counted. (The socket used to stay open after the final drain, through
    the final flush: what was queued then was discarded with the socket.)"""
    db = tmp_path / "c.db"
    col = CollectProcess(tmp_path / "tlsrpt.sock", f"sqlite:///{db}", tmp_path / "c.spool")
    await col.start()
    sent = [0]
    stop = threading.Event()
    flood = asyncio.create_task(asyncio.to_thread(_flood_until_refused, col.sock, sent, stop))
    await _until(lambda: sent[0] > 20_000, "20,000 datagrams sent")
    try:
        status, err = await col.stop()
    finally:
        stop.set()
        await flood
    assert status == 0, err
    assert f"{sent[0]} datagrams counted" in err, (sent[0], err)
    assert await _totals(f"sqlite:///{db}") == (sent[0], 0, 0)


async def test_oversized_datagrams_are_logged_once_with_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Datagrams over 1 MiB (truncated by the kernel into the 1 MiB + 1 buffer) are
    rejected as datagram.too-large and logged in one line with how many there were."""
    store = TlsRptStore.open(f"sqlite:///{tmp_path / 'c.db'}")
    await store.create()
    sock_path = tmp_path / "tlsrpt.sock"
    sock = bind_socket(sock_path)
    col = Collector(sock, store)
    big = b"{" + b" " * (2 << 20) + b"}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        try:
            for _ in range(3):
                s.sendto(big, str(sock_path))
                col.drain_socket()
        except OSError as exc:
            if exc.errno != errno.EMSGSIZE:
                raise
            pytest.skip(f"this kernel refuses {len(big)}-byte unix datagrams: {exc}")
    send_datagrams(sock_path, [OK])
    col.drain_socket()
    with caplog.at_level("WARNING", "mtasts.tlsrpt.collect.collector"):
        await col.flush()
        await col.flush()
    sock.close()
    await store.close()
    assert col.stats.rejected["datagram.too-large"] == 3
    assert col.stats.accepted == 1
    lines = [r.getMessage() for r in caplog.records if "too-large" in r.getMessage()]
    assert lines == [
        "libtlsrpt datagram rejected: 3 datagrams larger than 1048575 bytes since the last "
        "flush (datagram.too-large)"
    ]


@pytest.mark.parametrize("bad", [b"junk\n", b'{"format":"other","version":1}\n'])
async def test_an_unreadable_spool_is_moved_aside_not_counted(tmp_path: Path, bad: bytes) -> None:
    spool = tmp_path / "c.spool"
    spool.write_bytes(bad)
    store = TlsRptStore.open(f"sqlite:///{tmp_path / 'c.db'}")
    flusher = CounterFlusher(store, spool=spool, wall=lambda: 1_700_000_000.75)
    await flusher.start()
    await store.close()
    assert not spool.exists()
    (aside,) = [Path(e.path) for e in os.scandir(tmp_path) if e.name.startswith("c.spool.")]
    assert aside.name == "c.spool.invalid-1700000000"  # named by the flusher's wall clock
    assert aside.read_bytes() == bad
    assert not flusher.counters


def test_collect_exits_1_naming_a_lost_spool(tmp_path: Path) -> None:
    """Store down and the spool cannot be written either: exit 1, and the line says the
    sessions are lost (never a silent exit 0)."""
    sock_path = tmp_path / "tlsrpt.sock"
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = subprocess.Popen(
        [
            *MTASTS,
            "tlsrpt",
            "collect",
            "--socket",
            str(sock_path),
            "--store",
            "postgresql://postgres@127.0.0.1:1/none",
            "--spool",
            str(blocker / "c.spool"),  # under a regular file: cannot be created
        ],
        env={**os.environ},
        stderr=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    deadline = time.monotonic() + 30
    while not sock_path.exists():
        assert time.monotonic() < deadline
        assert proc.poll() is None
        time.sleep(0.02)
    send_datagrams(sock_path, [OK] * 3)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    assert "3 sessions in 1 counters are LOST" in err


def _flood_datagram(i: int) -> bytes:
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


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_max_memory_holds_as_measured_peak_rss(tmp_path: Path) -> None:
    """`--max-memory 128` with the store down and a flood of 40,000 distinct real-sized
    datagrams (one new domain each): the process's peak resident memory (the kernel's
    VmHWM) stays under 128 MiB; the datagrams past the bound are rejected, each one
    accounted for. (The bound used to count only the counters' own estimate: the
    decoder's caches and a flush's rows came on top, and RSS reached twice the bound.)"""
    sock_path = tmp_path / "tlsrpt.sock"
    proc = subprocess.Popen(
        [
            *MTASTS,
            "tlsrpt",
            "collect",
            "--socket",
            str(sock_path),
            "--store",
            "postgresql://postgres@127.0.0.1:1/none",
            "--spool",
            str(tmp_path / "c.spool"),
            "--max-memory",
            "128",
            "--flush-interval",
            "0.5",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    _STARTED.append(proc)
    deadline = time.monotonic() + 30
    while not sock_path.exists():
        assert time.monotonic() < deadline
        assert proc.poll() is None
        time.sleep(0.02)
    n = 40_000
    send_datagrams(sock_path, [_flood_datagram(i) for i in range(n)])
    time.sleep(1.5)  # the last fold
    peak = _peak_rss(proc.pid)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err  # the store is down: spooled
    assert peak <= 128 << 20, f"peak RSS {peak >> 20} MiB"
    summary = [line for line in err.splitlines() if "datagrams counted" in line]
    counted, rejected = [int(w) for w in summary[0].split() if w.isdigit()][:2]
    assert counted + rejected == n
    assert 5_000 < counted < n // 2
    assert (tmp_path / "c.spool").exists()


async def test_counting_starts_while_the_store_is_still_connecting(tmp_path: Path) -> None:
    """A PostgreSQL that accepts connections and never answers (a hung server, a lost
    route): the collector reads and counts its socket from the start while its connection
    attempt waits for the connect timeout. (It used to reach the store before reading:
    meanwhile Postfix's datagrams beyond the kernel's short queue were dropped.)"""
    held: list[asyncio.StreamWriter] = []

    async def never_answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = TlsRptStore.open(f"postgresql://postgres@127.0.0.1:{port}/test")
    sock_path = tmp_path / "tlsrpt.sock"
    sock = bind_socket(sock_path)
    col = Collector(sock, store, flush_interval=0.05)
    col.flusher.shutdown_timeout = 0.5
    try:
        async with _running(col, store):
            await asyncio.to_thread(send_datagrams, sock_path, [OK] * 100)
            await _until(lambda: col.stats.accepted == 100, "100 sessions counted", 5)
            assert held  # the connection attempt is still waiting for an answer
            assert col.flusher.stats.failed_attempts == 0
    finally:
        server.close()
        for w in held:
            w.transport.abort()
    assert col.stats.shutdown is not None
    assert col.stats.shutdown.sessions == 100  # (no spool configured: kept, reported)


async def test_a_stop_while_the_schema_is_being_created_still_flushes(tmp_path: Path) -> None:
    """SIGTERM while the collector's first connection is still creating the schema (here
    it waits for another process's lock; on a slow machine the migrations just take
    their time): the start-up attempt is cancelled half-way, and the shutdown flush must
    not run on the connection it left inside its transaction. Every session is written,
    nothing spooled. (It used to fail with "cannot start a transaction within a
    transaction" and spool the counters: `tlsrpt collect` exited 1.)"""
    path = tmp_path / "c.db"
    with contextlib.closing(sqlite3.connect(path)) as first:
        first.execute("PRAGMA journal_mode=WAL")  # as the store leaves it: a write waits
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock: the migrations' BEGIN waits for it
    store = TlsRptStore(SqliteDatabase(str(path), busy_timeout_ms=5_000))
    sock_path = tmp_path / "tlsrpt.sock"
    sock = bind_socket(sock_path)
    col = Collector(sock, store, flush_interval=3600, spool=tmp_path / "c.spool")
    task = asyncio.create_task(col.run())
    try:
        await asyncio.to_thread(send_datagrams, sock_path, [OK] * 30 + [FAIL] * 20)
        await asyncio.sleep(0.3)
        assert not col.flusher.connected  # the schema is still waiting for the lock
        assert col.flusher.stats.failed_attempts == 0
    finally:
        col.stop()
        await asyncio.sleep(0.3)  # the start-up attempt is cancelled meanwhile
        holder.execute("COMMIT")
        holder.close()
        await task
        col.sock.close()
        await store.close()
    assert col.stats.shutdown is not None
    assert col.stats.shutdown.complete, col.stats.shutdown
    assert not (tmp_path / "c.spool").exists()
    assert await _totals(f"sqlite:///{path}") == (30, 20, 20)
