"""Schema versions with Alembic, run from the package: no alembic.ini, no env.py.

The migrations live in :mod:`mtasts.store.migrations` (``versions/``): 0001 is the
schema of the first release (the TLS-RPT sending tables, made then by CREATE TABLE IF
NOT EXISTS with no version), 0002 adds the receiving tables. :func:`upgrade` brings any
store to the newest version in one transaction:

- a store with an ``alembic_version`` row is upgraded from that revision;
- a store with the first release's tables and no version is stamped 0001, then upgraded
  (its data stays);
- an empty database is built from 0001 up.

Alembic renders each migration as SQL for the store's dialect ("offline" mode) and the
statements run on the project's own drivers (aiosqlite, asyncpg): SQLAlchemy's asyncio
engine would need the greenlet package, and PostgreSQL a second, synchronous driver.
Concurrent upgrades are serialised (SQLite's BEGIN IMMEDIATE, a PostgreSQL advisory lock).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from mtasts.store.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")
FIRST_RELEASE = "0001"  # the revision of a store written before migrations existed
_FIRST_RELEASE_TABLE = "tlsrpt_policy_counters"
_LOCK_ID = 0x6D7461737473  # PostgreSQL advisory lock key ("mtasts")


class _Statements:
    """Alembic's output buffer: every write is one statement (``static_output``)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def write(self, chunk: str) -> None:
        sql = chunk.strip().removesuffix(";").strip()
        if sql and not sql.startswith("--") and sql.upper() not in ("BEGIN", "COMMIT"):
            self.statements.append(sql)

    def flush(self) -> None:
        pass


def script_directory() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head() -> str:
    rev = script_directory().get_current_head()
    assert rev is not None
    return rev


def upgrade_sql(dialect_name: str, current: str | None, target: str = "heads") -> list[str]:
    """The statements that take a ``dialect_name`` store from ``current`` (None: an empty
    database) to ``target``, version table updates included."""
    script = script_directory()
    buffer = _Statements()

    def steps(heads: Any, _context: Any) -> Any:
        return script._upgrade_revs(target, heads)

    context = MigrationContext.configure(
        dialect_name=dialect_name,
        opts={
            "as_sql": True,
            "output_buffer": buffer,
            "fn": steps,
            "starting_rev": current,
            "destination_rev": target,
            "script": script,
        },
    )
    with Operations.context(context):
        context.run_migrations()
    return buffer.statements


async def _tables(db: Database) -> set[str]:
    if db.dialect.name == "postgresql":
        q = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
    else:
        q = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {r["name"] for r in await db.fetch(text(q))}


async def current_revision(db: Database) -> str | None:
    """The store's revision: its alembic_version, FIRST_RELEASE for a store of the first
    release, None for an empty database."""
    tables = await _tables(db)
    if "alembic_version" in tables:
        rows = await db.fetch(text("SELECT version_num FROM alembic_version"))
        if rows:
            return str(rows[0]["version_num"])
    if _FIRST_RELEASE_TABLE in tables:
        return FIRST_RELEASE
    return None


def _escape(sql: str) -> Any:
    return text(sql.replace(":", r"\:"))  # a colon in DDL is no bind parameter


async def upgrade(db: Database, target: str = "heads") -> tuple[str | None, str]:
    """Bring the store to ``target`` (the newest version); returns (before, after)."""
    async with db.transaction():
        if db.dialect.name == "postgresql":
            await db.fetch(text(f"SELECT pg_advisory_xact_lock({_LOCK_ID})"))
        before = await current_revision(db)
        tables = await _tables(db)
        if before == FIRST_RELEASE and "alembic_version" not in tables:
            # the first release's store: stamp it, then upgrade from there
            await db.execute(
                text(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
                )
            )
            await db.execute(
                text(f"INSERT INTO alembic_version (version_num) VALUES ('{FIRST_RELEASE}')")  # noqa: S608 (a constant)
            )
        want = head() if target == "heads" else target
        if before != want:
            for sql in upgrade_sql(db.dialect.name, before, target):
                await db.execute(_escape(sql))
    return before, want
