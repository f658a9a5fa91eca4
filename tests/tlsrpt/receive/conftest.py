"""Receiver fixtures: every store-backed receiving test runs on SQLite and on the real
PostgreSQL server (``store_url`` of tests/conftest.py: one schema per test, dropped
afterwards)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import pytest

from mtasts.net.dns import DnsClient
from mtasts.tlsrpt.receive.decide import ReceiveSettings
from mtasts.tlsrpt.receive.intake import Receiver

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)

OpenReceiver = Callable[..., Awaitable[Receiver]]


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
