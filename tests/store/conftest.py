"""Store fixtures: a TLS-RPT store in a fresh schema of the real PostgreSQL server."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

import pytest

from mtasts.tlsrpt.store import TlsRptStore

PG_URL = os.environ.get("MTASTS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def _pg_store() -> AsyncIterator[TlsRptStore]:
    if not _pg_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (CI must start it)")
        pytest.skip(
            "no PostgreSQL on 127.0.0.1:5432: apt-get install postgresql (user postgres, "
            "trust auth, database test) or run under CI=true via .ci/run"
        )
    import asyncpg  # the real server, one schema per test, dropped afterwards

    schema = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f"CREATE SCHEMA {schema}")
    store = TlsRptStore.open(PG_URL, schema=schema)
    try:
        yield store
    finally:
        await store.close()
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
