"""Alert fixtures: the alert tables on SQLite and on the real PostgreSQL server, and a
real local HTTP server whose answers a test scripts (webhooks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from tests.pg import PG_URL, fresh_schema

from mtasts.alerts.message import Message
from mtasts.alerts.store import AlertStore


@dataclass
class StoreAt:
    """An upgraded alert store and how to open it again (url, schema)."""

    store: AlertStore
    url: str
    schema: str | None


@pytest.fixture(params=["sqlite", "postgresql"])
async def at(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreAt]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'alerts.db'}"
        store = AlertStore.open(url)
        await store.upgrade()
        yield StoreAt(store, url, None)
        await store.close()
        return
    async with fresh_schema() as schema:
        store = AlertStore.open(PG_URL, schema=schema)
        try:
            await store.upgrade()
            yield StoreAt(store, PG_URL, schema)
        finally:
            await store.close()


@dataclass
class Recorder:
    """A channel that keeps what it is given (for the transition tests; the real
    channels are tested against real servers in test_channels.py)."""

    name: str = "rec"
    sent: list[Message] = field(default_factory=list)
    fail: bool = False

    async def send(self, message: Message) -> None:
        from mtasts.alerts.channels import ChannelError

        if self.fail:
            raise ChannelError("recorder told to fail")
        self.sent.append(message)

    async def aclose(self) -> None:
        return None

    def events(self) -> list[tuple[str, str]]:
        return [(str(m.event), m.key) for m in self.sent]


@dataclass
class Hook:
    """A real HTTP/1.1 server on 127.0.0.1:<ephemeral>: each request gets the next
    scripted answer (status, delay in seconds); the last one repeats."""

    script: list[tuple[int, float]] = field(default_factory=lambda: [(200, 0.0)])
    bodies: list[dict[str, object]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    requests: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook/secret-path"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            hdrs = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(hdrs.get("content-length", "0")))
            status, delay = self.script[min(self.requests, len(self.script) - 1)]
            self.requests += 1
            if delay:
                await asyncio.sleep(delay)
            if status == 200:
                self.bodies.append(orjson.loads(body))
                self.headers.append(hdrs)
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook()
    h.server = await asyncio.start_server(h.handle, "127.0.0.1", 0)
    h.port = h.server.sockets[0].getsockname()[1]
    try:
        yield h
    finally:
        h.server.close()
        await h.server.wait_closed()
