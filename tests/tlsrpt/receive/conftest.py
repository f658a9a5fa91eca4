"""Receiver fixtures: every store-backed receiving test runs on SQLite and on the real
PostgreSQL server (one schema per test, dropped afterwards)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mtasts.net.dns import DnsClient
from mtasts.tlsrpt.receive.decide import ReceiveSettings
from mtasts.tlsrpt.receive.intake import Receiver

PG_URL = os.environ.get("MTASTS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

OpenReceiver = Callable[..., Awaitable[Receiver]]


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def require_pg() -> None:
    if _pg_reachable():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (CI must start it)")
    pytest.skip("no PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth, database test)")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str | None]]:
    """(url, schema) of an empty store on each database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'received.db'}", None
        return
    require_pg()
    import asyncpg

    schema = f"r_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield PG_URL, schema
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()


@pytest.fixture
async def open_receiver(
    store_url: tuple[str, str | None],
) -> AsyncIterator[OpenReceiver]:
    """``await open_receiver(settings, resolver=...)``: receivers closed after the test."""
    opened: list[Receiver] = []

    async def factory(
        settings: ReceiveSettings | None = None, *, resolver: DnsClient | None = None
    ) -> Receiver:
        url, schema = store_url
        r = await Receiver.open(
            url,
            settings or ReceiveSettings(verify_dkim=False),
            resolver=resolver,
            clock=lambda: NOW.timestamp(),
            schema=schema,
        )
        opened.append(r)
        return r

    yield factory
    for r in opened:
        await r.close()
