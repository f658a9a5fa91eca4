"""The daemon's HTTP side door (/metrics, /cache/DOMAIN) over a real loopback socket."""

from __future__ import annotations

import asyncio
import time

import pytest

import mtasts.postfix.admin as admin_module
from mtasts.postfix.admin import Admin
from mtasts.postfix.server import SocketmapServer
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source


class DownCache:
    """A cache backend that is down (Redis unreachable, SQLite locked)."""

    url = "redis://127.0.0.1:1/0"

    async def get(self, domain: str) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")


class DownResolver:
    cache = DownCache()


class NoSource:
    async def lookup(self, domain: str) -> PolicyLookup:
        return PolicyLookup(domain, LookupStatus.NO_POLICY, Source.CACHE)


async def _get(admin: Admin, path: str) -> bytes:
    host, port = await admin.listen("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    await admin.close()
    return response


async def test_a_failing_cache_backend_is_a_500_naming_the_failure() -> None:
    """It was an unhandled exception: the connection closed with no response, which the
    CLI reported as 'cannot reach the daemon'."""
    admin = Admin(SocketmapServer(NoSource()), DownResolver())  # type: ignore[arg-type]
    response = await _get(admin, "/cache/example.com")
    assert response.startswith(b"HTTP/1.1 500 ")
    assert b"Connection refused" in response


async def test_metrics_are_served_in_the_prometheus_format() -> None:
    admin = Admin(SocketmapServer(NoSource()), DownResolver())  # type: ignore[arg-type]
    response = await _get(admin, "/metrics")
    assert response.startswith(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"
    )
    assert b"# TYPE mtasts_socketmap_answers_total counter" in response


# --- hostile input: the head is read by net.httpserver (h11), as the policy host's is --------


async def _exchange(admin: Admin, port: int, data: bytes, *, close: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if close:
        writer.write_eof()
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return response


def _admin() -> Admin:
    return Admin(SocketmapServer(NoSource()), DownResolver())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        # defect: not an HTTP request line; the hand parser routed it as a path (404)
        (b"GARBAGE\r\n\r\n", b"400"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64 + b"\r\n\r\n", b"400"),
        # defect: two Host headers were accepted (RFC 9112 §3.2: MUST 400)
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
        (b"GET /metrics HTTP/1.1\r\n\r\n", b"400"),  # HTTP/1.1 without Host
        (b"GET /metrics HTTP/1.1\r\nHost : a\r\n\r\n", b"400"),  # space before the colon
        # defect: any version was served as HTTP/1.1
        (b"GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", b"505"),
        (b"GET /metrics HTTP/1.x\r\nHost: a\r\n\r\n", b"400"),
        # defect: a head up to 64 KiB was read; above, the connection closed unanswered
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000 + b"\r\n\r\n", b"431"),
        (b"GET /metrics HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
        (b"GET /metrics HTTP/1.0\r\n\r\n", b"200"),  # HTTP/1.0 needs no Host
    ],
)
async def test_hostile_request_heads_get_their_status_and_do_not_hurt_the_server(
    request_bytes: bytes, status: bytes
) -> None:
    admin = _admin()
    _, port = await admin.listen("127.0.0.1", 0)
    try:
        answer = await _exchange(admin, port, request_bytes)
        good = await _exchange(admin, port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        await admin.close()
    assert answer[:9] == b"HTTP/1.1 ", answer[:80]
    assert answer[9:12] == status, answer[:200]
    assert good.startswith(b"HTTP/1.1 200 OK\r\n")


async def test_a_head_above_the_bound_trickled_in_gets_431() -> None:
    admin = _admin()
    _, port = await admin.listen("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):
            writer.write(b"X-Filler: " + b"a" * 500 + b"\r\n")
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        await admin.close()
    assert answer.startswith(b"HTTP/1.1 431 ")


async def test_a_slow_head_is_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client that never finishes its head is closed after HEAD_SECONDS, unanswered."""
    monkeypatch.setattr(admin_module, "HEAD_SECONDS", 0.3)
    admin = _admin()
    _, port = await admin.listen("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(), 5)
        waited = time.monotonic() - started
        writer.close()
    finally:
        await admin.close()
    assert answer == b""
    assert 0.2 < waited < 3.0


async def test_pipelined_junk_is_never_read_as_a_request() -> None:
    """One request per connection: what follows the first head is not answered, and a
    lot of it does not reset the connection before the answer is read."""
    admin = _admin()
    _, port = await admin.listen("127.0.0.1", 0)
    junk = b"DELETE /cache/example.com HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00junk" * 20000
    try:
        answer = await _exchange(admin, port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" + junk)
    finally:
        await admin.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.count(b"HTTP/1.1 ") == 1


async def test_a_client_that_sends_nothing_gets_nothing_and_the_server_goes_on() -> None:
    admin = _admin()
    _, port = await admin.listen("127.0.0.1", 0)
    try:
        assert await _exchange(admin, port, b"") == b""
        good = await _exchange(admin, port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        await admin.close()
    assert good.startswith(b"HTTP/1.1 200 OK\r\n")
