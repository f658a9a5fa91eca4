"""The policy host server on loopback: HTTPS and plain HTTP, Host routing, bad requests."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import resource
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mtasts.errors import ConfigError
from mtasts.publish.limits import ClientLimits
from mtasts.publish.server import (
    PolicyServer,
    ServerLimits,
    load_config,
    load_directory,
    server_tls_context,
)
from mtasts.publish.site import Site

POLICY = b"version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n"


async def raw_request(
    port: int, request: bytes, ctx: ssl.SSLContext | None = None, sni: str | None = None
) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=sni)
    writer.write(request)
    await writer.drain()
    if ctx is None:
        writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def get(host: str, path: str = "/.well-known/mta-sts.txt") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


async def test_https_serves_each_domain_by_host(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("mta-sts.example.com", "mta-sts.example.net")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "both.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    tls = server_tls_context(tmp_path / "both.pem", tmp_path / "key.pem")
    site = Site({"example.com": POLICY, "example.net": POLICY.replace(b"testing", b"enforce")})
    client = ssl.create_default_context()
    ca.configure_trust(client)
    async with PolicyServer(site, tls) as server:
        _, port = await server.start("127.0.0.1", 0)
        one = await raw_request(port, get("mta-sts.example.com"), client, "mta-sts.example.com")
        two = await raw_request(port, get("mta-sts.example.net"), client, "mta-sts.example.net")
        unknown = await raw_request(port, get("mta-sts.other.org"), client, "mta-sts.example.com")
    assert one.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in one
    assert one.endswith(POLICY)
    assert two.endswith(b"mode: enforce\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n")
    assert unknown.startswith(b"HTTP/1.1 404 ")
    assert b"Location" not in unknown


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),  # defect: not an HTTP request line
        (
            b"GET / HTTP/1.1\r\nHost: mta-sts.example.com\r\n" + b"X: " + b"a" * 9000 + b"\r\n\r\n",
            b"431",
        ),  # defect: head too big (RFC 6585 §5: 431 Request Header Fields Too Large)
        (b"", b"400"),  # defect: the client sends nothing and closes its side
    ],
)
async def test_bad_requests_get_400_and_do_not_hurt_the_server(
    request_bytes: bytes, status: bytes
) -> None:
    async with PolicyServer(Site({"example.com": POLICY})) as server:
        _, port = await server.start("127.0.0.1", 0)
        answer = await raw_request(port, request_bytes)
        assert answer[9:12] == status
        good = await raw_request(port, get("mta-sts.example.com"))
    assert good.startswith(b"HTTP/1.1 200 OK")


async def test_reload_swaps_policies() -> None:
    async with PolicyServer(Site({"example.com": POLICY})) as server:
        _, port = await server.start("127.0.0.1", 0)
        server.reload(Site({"example.org": POLICY}))
        assert (await raw_request(port, get("mta-sts.example.com"))).startswith(b"HTTP/1.1 404")
        assert (await raw_request(port, get("mta-sts.example.org"))).startswith(b"HTTP/1.1 200")


def test_load_directory_and_config(tmp_path: Path) -> None:
    (tmp_path / "example.com.txt").write_bytes(POLICY)
    (tmp_path / "notes.md").write_text("ignored")
    assert load_directory(tmp_path).policies == {"example.com": POLICY}
    config = tmp_path / "sites.toml"
    config.write_text('[policies]\n"Example.NET" = "example.com.txt"\n')
    assert load_config(config).policies == {"example.net": POLICY}


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("[policies]\n", "needs a [policies] table"),  # defect: empty
        ('[policy]\n"a.example" = "x.txt"\n', "unknown key"),  # defect: typo in the table name
        (
            '[policies]\n"mta-sts.a.example" = "example.com.txt"\n',
            "not the policy host",
        ),  # defect: host, not domain
        ('[policies]\n"a.example" = "missing.txt"\n', "cannot read"),  # defect: no such file
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, toml: str, fragment: str) -> None:
    (tmp_path / "example.com.txt").write_bytes(POLICY)
    config = tmp_path / "sites.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(config)


def test_oversized_policy_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "example.com.txt").write_bytes(POLICY + b"x" * 70000)
    with pytest.raises(ConfigError, match="64 KB"):
        load_directory(tmp_path)


async def test_close_ends_connections_still_being_read() -> None:
    """close() ends a half-sent request at once, leaving no handler task or socket behind
    (asyncio.Server.close() in Python 3.11 only stops listening)."""
    async with PolicyServer(Site({"example.com": POLICY})) as server:
        _, port = await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n")  # defect: never finished
        await writer.drain()
        await asyncio.sleep(0.05)  # the server has accepted and is reading
        await asyncio.wait_for(server.close(), 3)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == []
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()
        await writer.wait_closed()


async def test_silent_tls_client_is_dropped_after_the_read_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that connects to the HTTPS port and never starts TLS is dropped after
    READ_TIMEOUT, like a slow request (asyncio's own handshake limit is 60 s)."""
    monkeypatch.setattr("mtasts.publish.server.READ_TIMEOUT", 0.5)
    ca = trustme.CA()
    ca.issue_cert("mta-sts.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "c.pem")
    )
    tls = server_tls_context(tmp_path / "c.pem", tmp_path / "c.pem")
    async with PolicyServer(Site({"example.com": POLICY}), tls) as server:
        _, port = await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # defect: no hello
        try:
            assert await asyncio.wait_for(reader.read(), 20) == b""
        finally:
            writer.close()
            await writer.wait_closed()


def test_directory_names_are_read_as_senders_spell_them(tmp_path: Path) -> None:
    """A file named with the U-label serves the A-label host senders ask for."""
    (tmp_path / "Bücher.example.txt").write_bytes(POLICY)
    assert load_directory(tmp_path).policies == {"xn--bcher-kva.example": POLICY}


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        (["a..example.txt"], "empty label"),  # defect: no Host header can ever match it
        (["a_b.example.txt"], "letters, digits and hyphens"),  # defect: not a host name
        (["bücher.example.txt", "xn--bcher-kva.example.txt"], "two policies"),  # defect: twice
    ],
)
def test_directory_names_that_no_sender_asks_for_are_errors(
    tmp_path: Path, files: list[str], fragment: str
) -> None:
    for name in files:
        (tmp_path / name).write_bytes(POLICY)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_directory(tmp_path)


# --- HTTP parsing (h11) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # defect: two Host headers, the first one served (RFC 9112 §3.2: MUST 400)
        (
            b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n"
            b"Host: mta-sts.evil.example\r\n\r\n",
            b"400",
        ),
        (
            b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nhost: mta-sts.example.com\r\n"
            b"HOST: mta-sts.example.com\r\n\r\n",
            b"400",
        ),  # defect: the same Host twice, in other cases
        (b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n\r\n", b"400"),  # no Host in HTTP/1.1
        (
            b"GET /.well-known/mta-sts.txt HTTP/1.2\r\nHost: mta-sts.example.com\r\n\r\n",
            b"505",
        ),  # defect: an HTTP version that does not exist was served as 1.1
        (
            b"GET /.well-known/mta-sts.txt HTTP/2.0\r\nHost: mta-sts.example.com\r\n\r\n",
            b"505",
        ),
        (
            b"GET /.well-known/mta-sts.txt HTTP/0.9\r\nHost: mta-sts.example.com\r\n\r\n",
            b"505",
        ),
        (
            b"GET /.well-known/mta-sts.txt HTTP/1.x\r\nHost: mta-sts.example.com\r\n\r\n",
            b"400",
        ),  # defect: "HTTP/1." followed by anything was accepted
        (
            b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost : mta-sts.example.com\r\n\r\n",
            b"400",
        ),  # whitespace before the colon (RFC 9112 §5.1: MUST 400)
        (b"GET /.well-known/mta-sts.txt HTTP/1.0\r\n\r\n", b"404"),  # 1.0 without Host: 404
        (
            b"GET /.well-known/mta-sts.txt HTTP/1.0\r\nHost: mta-sts.example.com\r\n\r\n",
            b"200",
        ),
    ],
)
async def test_request_heads_are_parsed_strictly(request_bytes: bytes, status: bytes) -> None:
    async with PolicyServer(Site({"example.com": POLICY})) as server:
        _, port = await server.start("127.0.0.1", 0)
        answer = await raw_request(port, request_bytes)
    assert answer[:9] == b"HTTP/1.1 "
    assert answer[9:12] == status, answer


async def test_a_head_larger_than_the_bound_split_over_reads_gets_431() -> None:
    """The bound holds however the head arrives: in one read or trickled in."""
    async with PolicyServer(Site({"example.com": POLICY})) as server:
        _, port = await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n")
        for _ in range(40):
            writer.write(b"X-Filler: " + b"a" * 500 + b"\r\n")
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_serves_ipv6_and_limits_a_client_by_its_64() -> None:
    """An IPv6 client is its /64: ::1 and any other address of ::/64 share one limit."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    limits = ServerLimits(per_client=ClientLimits(max_open=1, rate=0))
    async with PolicyServer(Site({"example.com": POLICY}), limits=limits) as server:
        try:
            host, port = await server.start("::1", 0)
        except OSError:
            pytest.skip("no IPv6 loopback")
        assert host == "::1"
        reader, writer = await asyncio.open_connection("::1", port)  # holds the one slot
        refused_reader, refused_writer = await asyncio.open_connection("::1", port)
        assert await asyncio.wait_for(refused_reader.read(), 10) == b""
        writer.write(get("mta-sts.example.com"))
        assert (await asyncio.wait_for(reader.read(), 10)).startswith(b"HTTP/1.1 200 OK")
        assert server.counts["refused"] == 1
        for w in (writer, refused_writer):
            w.close()


# --- connection limits -------------------------------------------------------------------


async def _idle(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sends nothing (a slow or hostile client)."""
    return await asyncio.open_connection("127.0.0.1", port)


async def _answer(port: int) -> bytes:
    """The answer to a valid request; b"" when the server closes without one (refused)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(get("mta-sts.example.com"))
        await writer.drain()
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), 10)
    except OSError:  # reset, or "not connected" when half-closing after the server closed
        return b""
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _eventually_served(port: int) -> bytes:
    """A request retried until it is answered: a refused connection closes at once."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        answer = await _answer(port)
        if answer or asyncio.get_running_loop().time() > deadline:
            return answer


async def test_a_client_gets_at_most_max_open_connections_at_once() -> None:
    limits = ServerLimits(per_client=ClientLimits(max_open=2, rate=0))
    async with PolicyServer(Site({"example.com": POLICY}), limits=limits) as server:
        _, port = await server.start("127.0.0.1", 0)
        idle = [await _idle(port) for _ in range(2)]
        # defect: a third connection from the same client is closed without an answer
        assert await _answer(port) == b""
        assert server.counts["refused"] == 1
        idle[0][1].close()  # one slot is free again once the server sees it close
        assert (await _eventually_served(port)).startswith(b"HTTP/1.1 200 OK")
        for _, writer in idle:
            writer.close()


async def test_a_client_gets_at_most_rate_new_connections_a_second() -> None:
    limits = ServerLimits(per_client=ClientLimits(max_open=0, rate=0.001, burst=3))
    async with PolicyServer(Site({"example.com": POLICY}), limits=limits) as server:
        _, port = await server.start("127.0.0.1", 0)
        answers = [await _answer(port) for _ in range(4)]
    assert [a[:15] for a in answers] == [b"HTTP/1.1 200 OK"] * 3 + [b""]
    assert server.counts["refused"] == 1


async def test_at_the_cap_the_oldest_waiting_connection_makes_room() -> None:
    """Idle connections cannot lock senders out: at the cap the oldest connection still
    waiting for its request is closed and the new one is served."""
    async with PolicyServer(
        Site({"example.com": POLICY}), limits=ServerLimits(max_connections=3)
    ) as server:
        _, port = await server.start("127.0.0.1", 0)
        idle = [await _idle(port) for _ in range(3)]
        answer = await raw_request(port, get("mta-sts.example.com"))
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert await asyncio.wait_for(idle[0][0].read(), 10) == b""  # the oldest: closed
        assert server.counts["closed-at-cap"] == 1
        for _, writer in idle:
            writer.close()


# --- the real server under attack -----------------------------------------------------------


@contextlib.contextmanager
def _policy_process(
    tmp_path: Path, *options: str, open_files: int | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """``mtasts serve policy`` as a process on a free loopback port: (process, port, log)."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "example.com.txt").write_bytes(POLICY)
    log = tmp_path / "stderr.txt"

    def limit_open_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with socket.socket() as probe:  # a free port (the CLI refuses port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listen = f"127.0.0.1:{port}"
    command = ["serve", "policy", "--dir", str(tmp_path / "site"), "--listen", listen]
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from mtasts.cli.main import main; main()", *command, *options],
            stderr=stderr,
            preexec_fn=limit_open_files,
        )
    try:
        deadline = time.monotonic() + 30
        while f"{listen} (at most" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        yield proc, port, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _rss(pid: int) -> int:
    """Resident set size of a process in bytes, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _bogus_client(port: int, n: int, untrusting: ssl.SSLContext) -> None:
    """One failed TLS handshake: mostly plain HTTP sent to the TLS port, every tenth a
    real handshake the client abandons (it does not trust the certificate)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        if n % 10:
            sock.sendall(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n\r\n")
            while sock.recv(4096):
                pass
        else:
            with (
                contextlib.suppress(ssl.SSLError),
                untrusting.wrap_socket(sock, server_hostname="mta-sts.example.com"),
            ):
                pass


def test_rss_stays_flat_over_20000_failed_tls_handshakes(tmp_path: Path) -> None:
    """defect: each failed handshake left ~80 KB behind (asyncio's SSL protocol, its
    buffer and the exception in a reference cycle): 0.8 GB after 10,000 from one client.
    A real server process and real bogus clients on loopback; RSS read from /proc."""
    ca = trustme.CA()
    ca.issue_cert("mta-sts.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "c.pem")
    )
    untrusting = ssl.create_default_context()  # trusts the system CAs, not ours
    options = ["--cert", str(tmp_path / "c.pem"), "--key", str(tmp_path / "c.pem")]
    options += ["--max-per-client", "0", "--client-rate", "0"]  # one client sends them all
    options += ["--read-timeout", "60"]  # a loaded machine turns no failure into a timeout
    with (
        _policy_process(tmp_path, *options) as (proc, port, log),
        concurrent.futures.ThreadPoolExecutor(16) as pool,
    ):
        baseline = 0
        for done in range(2000, 20_001, 2000):
            list(pool.map(lambda n: _bogus_client(port, n, untrusting), range(done - 2000, done)))
            rss = _rss(proc.pid)
            baseline = baseline or rss  # after the first 2,000: pools and caches warm
            growth = rss - baseline
            assert growth < 16 * 2**20, f"RSS grew {growth / 2**20:.0f} MiB after {done}"
        # still serving TLS only, not HTTP: the answer is one TLS alert record (the
        # handshake's failure is told to the client since serve policy --acme, issue 14)
        answer = raw_request_sync(port)
        assert answer[:1] == b"\x15", answer  # content type alert
        assert len(answer) == 7, answer  # one record: header + level + description
    text = log.read_text()
    assert "Traceback" not in text
    assert sum(int(n) for n in re.findall(r"(\d+) handshake-failed", text)) == 20_001


def raw_request_sync(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"\x16\x03\x01\x00\x01\x00")  # a truncated ClientHello, then EOF
        sock.shutdown(socket.SHUT_WR)
        return sock.recv(4096)


def test_at_the_open_files_limit_it_keeps_serving_and_logs_once(tmp_path: Path) -> None:
    """defect: with the open-files limit reached, asyncio logged a traceback per failed
    accept (40,000 in 20 s) and new senders waited for idle connections to time out."""
    options = ("--read-timeout", "60")  # the idle connections stay until we close them
    with _policy_process(tmp_path, *options, open_files=16) as (_, port, log):

        async def attack_then_fetch() -> bytes:
            idle = []
            for _ in range(40):
                with contextlib.suppress(OSError, TimeoutError):
                    idle.append(await asyncio.wait_for(_idle(port), 10))
            answer = await asyncio.wait_for(raw_request(port, get("mta-sts.example.com")), 30)
            for _, writer in idle:
                writer.close()
            return answer

        answer = asyncio.run(attack_then_fetch())
    assert answer.startswith(b"HTTP/1.1 200 OK")
    text = log.read_text()
    assert "Traceback" not in text
    # the Acceptor's warning, then ours as we close the oldest idle connection
    assert text.count("out of file descriptors (") == 1
    assert text.count("out of file descriptors: closing the oldest") == 1
