"""The SMTP probe against hostile or broken servers on loopback: bounded in time and size."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

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
