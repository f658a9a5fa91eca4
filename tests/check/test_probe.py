"""The SMTP probe against hostile or broken servers on loopback: bounded in time and size."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import trustme

from mtasts.check.probe import probe_mx

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[int]]]:
    servers: list[asyncio.Server] = []

    async def start(handler: Handler) -> int:
        async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await handler(reader, writer)
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

        server = await asyncio.start_server(closing, "127.0.0.1", 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # accepts, never greets


async def endless_reply(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        for _ in range(100_000):  # "220-" continuation lines, far more than any reply
            if writer.is_closing():
                break
            writer.write(b"220-still talking\r\n")
            await writer.drain()
            await asyncio.sleep(0)  # share the event loop with the client under test
    except ConnectionError:
        pass


async def long_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 " + b"x" * 100_000 + b"\r\n")
    await writer.drain()
    await reader.read()


async def not_smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    await writer.drain()
    writer.close()


async def no_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 mx ESMTP\r\n")
    await reader.readline()
    writer.write(b"250-mx\r\n250 SIZE 1000\r\n")
    await writer.drain()
    await reader.read()


@pytest.mark.parametrize(
    ("handler", "kind", "fragment"),
    [
        (silent, "timeout", "no answer within"),  # defect: never greets
        (endless_reply, "smtp", "endless reply"),  # defect: a reply that never ends
        (long_line, "smtp", "over-long line"),  # defect: a 100 kB line
        (not_smtp, "smtp", "not an SMTP reply"),  # defect: another protocol on port 25
    ],
)
async def test_hostile_servers_are_bounded(
    serve: Callable[[Handler], Awaitable[int]], handler: Handler, kind: str, fragment: str
) -> None:
    port = await serve(handler)
    started = time.monotonic()
    probe = await probe_mx("mx.example", "127.0.0.1", port=port, seconds=0.5)
    assert time.monotonic() - started < 3
    assert probe.error_kind == kind
    assert fragment in probe.error
    assert probe.tls is None


async def test_no_starttls_is_recorded_not_raised(
    serve: Callable[[Handler], Awaitable[int]],
) -> None:
    port = await serve(no_starttls)
    probe = await probe_mx("mx.example", "127.0.0.1", port=port, seconds=2)
    assert probe.connected
    assert not probe.starttls_offered
    assert probe.banner == "mx ESMTP"
    assert probe.error == ""


async def test_refused_connection() -> None:
    server = await asyncio.start_server(not_smtp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    probe = await probe_mx("mx.example", "127.0.0.1", port=port, seconds=2)
    assert not probe.connected
    assert probe.error_kind == "connect"


def _mute_after_starttls(
    listener: socket.socket, ctx: ssl.SSLContext, fin: threading.Event
) -> None:
    """One SMTP session through STARTTLS; then it never answers again (no close_notify),
    and sets ``fin`` when the client's TCP connection ends."""
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(60)
        reader = conn.makefile("rb")
        conn.sendall(b"220 mx ESMTP\r\n")
        reader.readline()
        conn.sendall(b"250-mx\r\n250 STARTTLS\r\n")
        reader.readline()
        conn.sendall(b"220 go ahead\r\n")
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                conn.sendall(outgoing.read())
                incoming.write(conn.recv(65536))
        conn.sendall(outgoing.read())
        while conn.recv(65536):  # QUIT and close_notify arrive; nothing is answered
            pass
        fin.set()


async def test_peer_that_never_answers_close_notify_is_cut_off(
    tmp_path: Path,
) -> None:
    """After a good STARTTLS the probe hangs up within seconds even when the MX never
    answers close_notify: asyncio alone would keep the socket 30 s, and forever (a leaked
    transport) once the event loop ends."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("mx.example").configure_cert(server_ctx)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    fin = threading.Event()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        thread = threading.Thread(target=_mute_after_starttls, args=(listener, server_ctx, fin))
        thread.start()
        probe = await probe_mx("mx.example", "127.0.0.1", port=port, ca_file=ca_file, seconds=5)
        assert probe.tls is not None
        assert probe.tls.chain_ok, probe
        assert await asyncio.to_thread(fin.wait, 10), "the probe kept the connection open"
        thread.join(5)
