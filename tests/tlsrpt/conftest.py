"""TLS-RPT fixtures shared by the sending side's tests (counters, journal, collector)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.store.conftest import _pg_store

from mtasts.tlsrpt.store import TlsRptStore


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TlsRptStore]:
    """A fresh TLS-RPT store with its tables, on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        s = TlsRptStore.open(f"sqlite:///{tmp_path / 'tlsrpt.db'}")
        await s.create()
        yield s
        await s.close()
    else:
        async for s in _pg_store():
            await s.create()
            yield s
