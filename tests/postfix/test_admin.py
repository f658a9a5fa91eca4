"""The daemon's HTTP side door (/metrics, /cache/DOMAIN) over a real loopback socket."""

from __future__ import annotations

import asyncio

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
