"""The socketmap daemon's connection handling, over real TCP and unix sockets.

The policy source here is a table behind the daemon's ``PolicySource`` port (the
resolver itself is exercised end to end in test_daemon_lab.py and test_postfix_e2e.py);
these tests pin ordering, framing, timeouts, shutdown and readiness.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import socket
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mtasts.errors import Notice, ServiceUnavailable
from mtasts.postfix.answers import ServerSettings
from mtasts.postfix.netstring import NetstringDecoder, encode
from mtasts.postfix.server import SocketmapServer, sd_notify
from mtasts.postfix.socketmap import ReplyOptions
from mtasts.postfix.sockets import FD_RESERVE, connection_cap
from mtasts.results import ResultType
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source
from mtasts.sts.policy import parse_policy

ENFORCE = "version: STSv1\nmode: enforce\nmx: mx1.example.test\nmax_age: 86400\n"


class TableSource:
    """Answers from a dict; ``delays`` make chosen domains slow; counts calls."""

    def __init__(self, delays: dict[str, float] | None = None) -> None:
        self.delays = delays or {}
        self.calls: list[str] = []

    async def lookup(self, domain: str) -> PolicyLookup:
        self.calls.append(domain)
        if domain in self.delays:
            await asyncio.sleep(self.delays[domain])
        if domain == "broken.test":
            raise RuntimeError("cache backend down")
        if domain.endswith("example.test") or domain.startswith("slow"):
            policy = parse_policy(ENFORCE)
            return PolicyLookup(domain, LookupStatus.STS, Source.CACHE, policy=policy)
        return PolicyLookup(domain, LookupStatus.NO_POLICY, Source.CACHE)


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = NetstringDecoder(100_000)
        self.got: list[bytes] = []

    async def send(self, *requests: str) -> None:
        self.writer.write(b"".join(encode(r.encode()) for r in requests))
        await self.writer.drain()

    async def replies(self, n: int) -> list[str]:
        while len(self.got) < n:
            data = await asyncio.wait_for(self.reader.read(65536), 5)
            if not data:
                break
            self.got += self.decoder.feed(data)
        out, self.got = self.got[:n], self.got[n:]
        return [r.decode() for r in out]

    async def ask(self, request: str) -> str:
        await self.send(request)
        (reply,) = await self.replies(1)
        return reply

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[SocketmapServer]:
    srv = SocketmapServer(
        TableSource({"slow.test": 0.3}),
        ServerSettings(
            zones={
                "strict": ReplyOptions(strict_testing=True),
                "old": ReplyOptions(servername=False),
            },
            lookup_timeout=1.0,
            answer_ttl=0.0,
        ),
    )
    yield srv
    await srv.close()


async def tcp_client(srv: SocketmapServer) -> Client:
    host, port = await srv.listen_tcp("127.0.0.1", 0)
    return Client(*await asyncio.open_connection(host, port))


SECURE = "OK secure match=mx1.example.test servername=hostname protocols=>=TLSv1.2"
# Postfix < 3.4 (servername = false): no servername, the pre-3.6 protocols syntax
OLD = "OK secure match=mx1.example.test protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"


async def test_tcp_many_requests_on_one_connection(server: SocketmapServer) -> None:
    c = await tcp_client(server)
    assert await c.ask("postfix example.test") == SECURE
    assert await c.ask("postfix Example.TEST") == SECURE  # keys are case-insensitive
    assert await c.ask("postfix .example.test") == "NOTFOUND "  # parent walk
    assert await c.ask("postfix [mx1.example.test]") == "NOTFOUND "
    assert await c.ask("postfix nopolicy.test") == "NOTFOUND "
    assert (
        await c.ask("old example.test")
        == "OK secure match=mx1.example.test protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"
    )
    await c.close()


async def test_pipelined_replies_keep_request_order(server: SocketmapServer) -> None:
    """A slow lookup first: the fast answers behind it wait, and come back in order."""
    c = await tcp_client(server)
    await c.send("postfix slow.test", "postfix example.test", "postfix .test", "postfix x.test")
    replies = await c.replies(4)
    assert replies == [
        "OK secure match=mx1.example.test servername=hostname protocols=>=TLSv1.2",
        SECURE,
        "NOTFOUND ",
        "NOTFOUND ",
    ]
    await c.close()


async def test_request_split_into_single_bytes(server: SocketmapServer) -> None:
    c = await tcp_client(server)
    for byte in encode(b"postfix example.test"):
        c.writer.write(bytes([byte]))
        await c.writer.drain()
    assert await c.replies(1) == [SECURE]
    await c.close()


async def test_broken_backend_defers_instead_of_downgrading(server: SocketmapServer) -> None:
    c = await tcp_client(server)
    assert (await c.ask("postfix broken.test")).startswith("TEMP ")
    await c.close()


async def test_lookup_slower_than_the_limit_answers_timeout() -> None:
    srv = SocketmapServer(
        TableSource({"slow.test": 5}), ServerSettings(lookup_timeout=0.2, answer_ttl=0)
    )
    c = await tcp_client(srv)
    assert await c.ask("postfix slow.test") == "TIMEOUT MTA-STS policy lookup timed out"
    await c.close()
    await srv.close()


async def test_bad_framing_closes_the_connection(server: SocketmapServer) -> None:
    c = await tcp_client(server)
    c.writer.write(b"3:abcX")
    await c.writer.drain()
    assert await asyncio.wait_for(c.reader.read(), 5) == b""
    await c.close()


async def test_malformed_request_gets_perm(server: SocketmapServer) -> None:
    c = await tcp_client(server)
    assert await c.ask("postfix") == "PERM malformed socketmap request"
    await c.close()


async def test_idle_connection_is_closed() -> None:
    srv = SocketmapServer(TableSource(), ServerSettings(idle_timeout=0.2))
    c = await tcp_client(srv)
    assert await c.ask("postfix example.test") == SECURE
    assert await asyncio.wait_for(c.reader.read(), 5) == b""
    await c.close()
    await srv.close()


async def test_unix_socket_with_mode_postfix_can_use(tmp_path: Path) -> None:
    srv = SocketmapServer(TableSource())
    path = str(tmp_path / "policy.sock")
    await srv.listen_unix(path, 0o666)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
    c = Client(*await asyncio.open_unix_connection(path))
    assert await c.ask("postfix example.test") == SECURE
    await c.close()
    await srv.close()
    assert not Path(path).exists()  # noqa: ASYNC240 (removed on shutdown)


async def test_graceful_close_finishes_requests_in_flight() -> None:
    srv = SocketmapServer(TableSource({"slow.test": 0.3}), ServerSettings(shutdown_grace=5))
    c = await tcp_client(srv)
    await c.send("postfix slow.test")
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(srv.close())
    assert await c.replies(1) == [
        "OK secure match=mx1.example.test servername=hostname protocols=>=TLSv1.2"
    ]
    await closing
    await c.close()


async def test_answer_cache_serves_repeat_requests_without_a_lookup() -> None:
    source = TableSource()
    srv = SocketmapServer(source, ServerSettings(answer_ttl=60))
    c = await tcp_client(srv)
    for _ in range(3):
        assert await c.ask("postfix example.test") == SECURE
    assert source.calls == ["example.test"]
    srv.forget("example.test")
    assert await c.ask("postfix example.test") == SECURE
    assert source.calls == ["example.test", "example.test"]
    exposition = srv.metrics.render().decode()
    assert 'mtasts_socketmap_answers_total{kind="answer-cache"} 2.0' in exposition
    await c.close()
    await srv.close()


async def test_answer_cache_expires_by_the_injected_clock() -> None:
    """A kept answer lives answer_ttl seconds of the server's clock (mtasts.clock)."""
    now = [1000.0]
    source = TableSource()
    answers = SocketmapServer(source, ServerSettings(answer_ttl=60), clock=lambda: now[0])
    first = await answers.answer(b"postfix example.test")
    now[0] += 59.0
    assert await answers.answer(b"postfix example.test") == first
    assert source.calls == ["example.test"]
    now[0] += 2.0
    assert await answers.answer(b"postfix example.test") == first
    assert source.calls == ["example.test", "example.test"]
    await answers.close()


def test_sd_notify_sends_ready_datagram(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        assert sd_notify("READY=1", {"NOTIFY_SOCKET": path})
        assert sock.recv(100) == b"READY=1"
    assert not sd_notify("READY=1", {})


def test_server_runs_on_uvloop() -> None:
    """The daemon's default loop: uvloop transports are not asyncio.Transport subclasses."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> str:
        srv = SocketmapServer(TableSource())
        c = await tcp_client(srv)
        try:
            return await c.ask("postfix example.test")
        finally:
            await c.close()
            await srv.close()

    assert uvloop.run(scenario()) == SECURE


class TimeoutUsingSource(TableSource):
    """Like redis.asyncio: uses asyncio.timeout (needs a current task) before it suspends."""

    async def lookup(self, domain: str) -> PolicyLookup:
        async with asyncio.timeout(5):
            await asyncio.sleep(0.01)
        return await super().lookup(domain)


async def test_sources_that_need_a_task_and_suspend_are_answered() -> None:
    """Lookups run eagerly until they suspend; they still run inside a task."""
    srv = SocketmapServer(TimeoutUsingSource(), ServerSettings(answer_ttl=0))
    c = await tcp_client(srv)
    await c.send("postfix example.test", "postfix x.test")
    assert await c.replies(2) == [SECURE, "NOTFOUND "]
    await c.close()
    await srv.close()


async def test_rendered_answers_expire_after_answer_ttl() -> None:
    """A reused answer is never older than answer_ttl: the next request asks the source."""
    source = TableSource()
    srv = SocketmapServer(source, ServerSettings(answer_ttl=0.2))
    c = await tcp_client(srv)
    assert await c.ask("postfix example.test") == SECURE
    assert await c.ask("postfix example.test") == SECURE
    assert source.calls == ["example.test"]
    await asyncio.sleep(0.35)
    assert await c.ask("postfix example.test") == SECURE
    assert source.calls == ["example.test", "example.test"]
    await c.close()
    await srv.close()


class FailingFetchSource:
    """A domain whose record exists but whose policy fetch failed, nothing cached."""

    async def lookup(self, domain: str) -> PolicyLookup:
        return PolicyLookup(
            domain,
            LookupStatus.FAILED,
            Source.FETCHED,
            result_type=ResultType.STS_POLICY_FETCH_ERROR,
        )


async def test_metrics_count_fetches_and_failures_by_result_type() -> None:
    srv = SocketmapServer(FailingFetchSource(), ServerSettings(answer_ttl=0))
    c = await tcp_client(srv)
    assert await c.ask("postfix failing.test") == "NOTFOUND "
    exposition = srv.metrics.render().decode()
    assert 'mtasts_socketmap_policy_lookups_total{source="fetched"} 1.0' in exposition
    assert (
        "mtasts_socketmap_policy_failures_total"
        '{applied="none",result_type="sts-policy-fetch-error"} 1.0'
    ) in exposition
    assert 'mtasts_socketmap_answers_total{kind="notfound"} 1.0' in exposition
    assert "mtasts_socketmap_lookup_seconds_count 1.0" in exposition
    await c.close()
    await srv.close()


async def test_client_that_never_reads_replies_cannot_grow_daemon_memory() -> None:
    """Reused answers are written inside data_received; a peer that pipelines requests and
    never reads must make the daemon stop reading, not buffer replies without bound."""
    srv = SocketmapServer(TableSource(), ServerSettings(answer_ttl=60))
    c = await tcp_client(srv)
    assert await c.ask("postfix example.test") == SECURE  # now a reused answer
    request = encode(b"postfix example.test")  # 24 bytes in, 58 bytes out
    for _ in range(100):
        c.writer.write(request * 2000)  # 48 KB per write, ~4.8 MB in all
        await asyncio.sleep(0)
    worst = 0
    for _ in range(50):
        await asyncio.sleep(0.01)
        (conn,) = srv._connections
        assert conn.transport is not None
        worst = max(worst, conn.transport.get_write_buffer_size())
    # asyncio pauses writing at 64 KiB; one more read's worth of replies may follow
    assert worst < 1_000_000, f"daemon buffered {worst} bytes of replies"
    c.writer.transport.abort()
    await srv.close()


async def test_unix_socket_of_a_running_daemon_is_not_taken_over(tmp_path: Path) -> None:
    """A second daemon on the same path fails like a TCP port in use; it used to unlink
    the live socket, so the first daemon was orphaned, and whichever stopped first
    removed the other's socket file (Postfix then gets 'No such file' for every lookup)."""
    path = str(tmp_path / "policy.sock")
    first = SocketmapServer(TableSource())
    await first.listen_unix(path)
    second = SocketmapServer(TableSource())
    with pytest.raises(ServiceUnavailable, match="in use"):
        await second.listen_unix(path)
    await second.close()
    c = Client(*await asyncio.open_unix_connection(path))
    assert await c.ask("postfix example.test") == SECURE
    await c.close()
    await first.close()


async def test_stale_unix_socket_file_is_replaced_on_restart(tmp_path: Path) -> None:
    """A socket file left by a daemon that was killed (nobody listening) is removed."""
    path = str(tmp_path / "policy.sock")
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(path)
    srv = SocketmapServer(TableSource())
    await srv.listen_unix(path)
    c = Client(*await asyncio.open_unix_connection(path))
    assert await c.ask("postfix example.test") == SECURE
    await c.close()
    await srv.close()


async def test_close_leaves_a_socket_file_that_is_not_ours(tmp_path: Path) -> None:
    """If the path was replaced while we ran, shutting down must not delete the new one."""
    path = str(tmp_path / "policy.sock")
    srv = SocketmapServer(TableSource())
    await srv.listen_unix(path)
    os.unlink(path)
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(path)
        await srv.close()
        assert stat.S_ISSOCK(os.stat(path).st_mode)


# --- framing errors, connection cap, file descriptors ----------------------------------------


async def test_valid_request_then_garbage_in_one_packet_is_answered_then_closed(
    server: SocketmapServer, caplog: pytest.LogCaptureFixture
) -> None:
    """defect: the decoder's error discarded the request before the garbage."""
    c = await tcp_client(server)
    c.writer.write(encode(b"postfix example.test") + encode(b"postfix slow.test") + b"GARBAGE")
    await c.writer.drain()
    assert await c.replies(2) == [SECURE, SECURE.replace("example.test", "example.test")]
    assert await asyncio.wait_for(c.reader.read(), 5) == b""  # then closed
    await c.close()
    (warning,) = [
        r.getMessage() for r in caplog.records if "socketmap connection" in r.getMessage()
    ]
    assert "after answering 2 request(s)" in warning
    assert "does not speak the socketmap protocol" in warning


async def test_http_request_is_described_as_not_socketmap(
    server: SocketmapServer, caplog: pytest.LogCaptureFixture
) -> None:
    """defect: was logged as a length prefix "longer than 4 digits"."""
    c = await tcp_client(server)
    c.writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await c.writer.drain()
    assert await asyncio.wait_for(c.reader.read(), 5) == b""
    await c.close()
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "does not speak the socketmap protocol" in messages
    assert "digits (requests" not in messages


async def test_at_the_connection_cap_the_oldest_idle_connection_makes_room() -> None:
    srv = SocketmapServer(TableSource(), ServerSettings(max_connections=3, answer_ttl=0))
    clients = [await tcp_client(srv) for _ in range(3)]
    for c in clients:
        assert await c.ask("postfix example.test") == SECURE
    newcomer = await tcp_client(srv)
    assert await newcomer.ask("postfix example.test") == SECURE
    assert await asyncio.wait_for(clients[0].reader.read(), 5) == b""  # the oldest went
    for c in clients[1:]:
        assert await c.ask("postfix x.test") == "NOTFOUND "  # the others stay
    assert srv.evicted == 1
    exposition = srv.metrics.render().decode()
    assert 'mtasts_socketmap_connections_closed_total{reason="evicted"} 1.0' in exposition
    assert "mtasts_socketmap_connections_open 3.0" in exposition
    for c in [*clients, newcomer]:
        await c.close()
    await srv.close()


async def test_at_the_cap_with_every_connection_busy_new_ones_are_refused_once_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    srv = SocketmapServer(
        TableSource({"slow.test": 1.0}), ServerSettings(max_connections=2, answer_ttl=0)
    )
    busy = [await tcp_client(srv) for _ in range(2)]
    for c in busy:
        await c.send("postfix slow.test")
    await asyncio.sleep(0.1)
    for _ in range(3):
        extra = await tcp_client(srv)
        assert await asyncio.wait_for(extra.reader.read(), 5) == b""
        await extra.close()
    for c in busy:  # the busy ones are not cut off
        assert await c.replies(1) == [SECURE]
        await c.close()
    assert srv.refused == 3
    exposition = srv.metrics.render().decode()
    assert 'mtasts_socketmap_connections_closed_total{reason="refused"} 3.0' in exposition
    assert sum("all busy" in r.getMessage() for r in caplog.records) == 1
    await srv.close()


def test_connection_cap_fits_the_open_files_limit() -> None:
    """The cap leaves descriptors for DNS, HTTPS and the stores under RLIMIT_NOFILE."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_cap(10) == 10 or soft < 138
    assert connection_cap(10**9) <= soft - FD_RESERVE or soft <= FD_RESERVE
    with pytest.raises(ValueError, match="at least 1"):
        connection_cap(0)


EMFILE_SCRIPT = """
import asyncio, resource, sys
from mtasts.postfix.answers import ServerSettings
from mtasts.postfix.server import SocketmapServer
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source

class NoPolicy:
    async def lookup(self, domain):
        return PolicyLookup(domain, LookupStatus.NO_POLICY, Source.CACHE)

async def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    srv = SocketmapServer(NoPolicy(), ServerSettings(answer_ttl=0))
    srv.max_connections = 10_000  # no cap: run into the descriptor limit itself
    host, port = await srv.listen_tcp("127.0.0.1", 0)
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    print("exhausted", srv.fd_exhausted_total, "evicted", srv.evicted, flush=True)
    await srv.close()

if sys.argv[1] == "uvloop":
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
"""


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
async def test_out_of_descriptors_closes_idle_connections_with_one_warning(loop: str) -> None:
    """defect: at the open-files limit asyncio logged a traceback per accept and uvloop
    dropped new connections silently; a lookup must still be answered."""
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", EMFILE_SCRIPT, loop,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        port = int(await asyncio.wait_for(proc.stdout.readline(), 30))
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
        c = Client(*await asyncio.open_connection("127.0.0.1", port))
        assert await asyncio.wait_for(c.ask("postfix example.test"), 20) == "NOTFOUND "
        await c.close()
        for _, writer in idle:
            writer.close()
        proc.stdin.close()
        summary = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        stderr = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    exhausted, evicted = int(summary.split()[1]), int(summary.split()[3])
    assert exhausted > 0
    assert evicted <= exhausted  # one idle connection closed per failed accept, no more
    assert "Traceback" not in stderr
    assert stderr.count("out of file descriptors") == 1, stderr


# --- policy failures reach the TLS-RPT counter; successes never do -------------------------


class MixedSource(TableSource):
    """``failing.test`` publishes a record but its policy cannot be fetched."""

    async def lookup(self, domain: str) -> PolicyLookup:
        if domain == "failing.test":
            self.calls.append(domain)
            return PolicyLookup(
                domain,
                LookupStatus.FAILED,
                Source.CACHE,
                result_type=ResultType.STS_WEBPKI_INVALID,
                cause=Notice("fetch.tls", "certificate verify failed"),
            )
        return await super().lookup(domain)


class RecordingSink:
    def __init__(self) -> None:
        self.counted: list[tuple[int, str, str, str]] = []

    def count(self, who: int, domain: str, result_type: str, reason_code: str = "") -> bool:
        self.counted.append((who, domain, result_type, reason_code))
        return True


async def test_failed_lookups_are_counted_once_per_request_and_successes_never() -> None:
    """Every request answered from a failed lookup reaches the counter (such answers are
    not reused); a reused or cached successful answer costs the counter nothing."""
    sink = RecordingSink()
    source = MixedSource()
    srv = SocketmapServer(source, ServerSettings(answer_ttl=60), failures=sink)
    first, second = await tcp_client(srv), await tcp_client(srv)
    for c in (first, first, second):
        assert await c.ask("postfix failing.test") == "NOTFOUND "
        assert await c.ask("postfix example.test") == SECURE
        assert await c.ask("postfix nopolicy.test") == "NOTFOUND "
    assert [(d, r, code) for _, d, r, code in sink.counted] == [
        ("failing.test", "sts-webpki-invalid", "fetch.tls")
    ] * 3
    assert len({who for who, *_ in sink.counted}) == 2  # the asking connection is known
    assert source.calls.count("failing.test") == 3
    assert source.calls.count("example.test") == 1  # successes reused as before
    for c in (first, second):
        await c.close()
    await srv.close()


def test_each_connection_is_its_own_delivery_attempt_even_when_ids_are_reused() -> None:
    """Connections are told apart by a serial number, not id(), which a new connection may
    reuse once the previous one is freed (seen in the real daemon: three attempts on three
    connections were counted as two; test_cli_daemon's store-down test fails that way)."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> int:
        sink = RecordingSink()
        srv = SocketmapServer(MixedSource(), ServerSettings(answer_ttl=0), failures=sink)
        for _ in range(5):
            c = await tcp_client(srv)
            assert await c.ask("postfix failing.test") == "NOTFOUND "
            await c.close()
            gc.collect()
        await srv.close()
        return len({who for who, *_ in sink.counted})

    assert uvloop.run(scenario()) == 5


def test_unix_socket_on_uvloop(tmp_path: Path) -> None:
    """The daemon's own accept on uvloop (its default loop) for unix sockets too."""
    uvloop = pytest.importorskip("uvloop")
    path = str(tmp_path / "policy.sock")

    async def scenario() -> str:
        srv = SocketmapServer(TableSource())
        await srv.listen_unix(path, 0o666)
        c = Client(*await asyncio.open_unix_connection(path))
        try:
            return await c.ask("postfix example.test")
        finally:
            await c.close()
            await srv.close()

    assert uvloop.run(scenario()) == SECURE
    assert not Path(path).exists()
