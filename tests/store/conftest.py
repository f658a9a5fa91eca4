"""Store fixtures: a TLS-RPT store in a fresh schema of the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.pg import PG_URL, fresh_schema

from mtasts.tlsrpt.store import TlsRptStore


async def _pg_store() -> AsyncIterator[TlsRptStore]:
    async with fresh_schema() as schema:  # the real server, one schema per test
        store = TlsRptStore.open(PG_URL, schema=schema)
        try:
            yield store
        finally:
            await store.close()
