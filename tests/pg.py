"""The real PostgreSQL server the store tests run against: 127.0.0.1:5432, user postgres,
trust authentication, database ``test`` (``MTASTS_TEST_POSTGRES`` overrides the URL).

Without it a test is skipped, except on CI, where it must run (it fails instead). Each
test works in a schema of its own, dropped afterwards, so tests never see each other's
rows.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_URL = os.environ.get("MTASTS_TEST_POSTGRES", f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test")


def pg_reachable() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def require_pg() -> None:
    """Skip the test without the server (fail it on CI, which must start one)."""
    if pg_reachable():
        return
    if os.environ.get("CI") == "true":
        pytest.fail("PostgreSQL is not running on 127.0.0.1:5432 (CI must start it)")
    pytest.skip("no PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth, database test)")


@asynccontextmanager
async def fresh_schema(prefix: str = "t") -> AsyncIterator[str]:
    """A new empty schema (``prefix_<random>``) on the server, dropped with all it holds
    on leaving; skips (or fails on CI) without the server."""
    require_pg()
    import asyncpg

    schema = f"{prefix}_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
