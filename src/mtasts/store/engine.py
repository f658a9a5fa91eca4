"""One store URL -> one async database: SQLite (aiosqlite) or PostgreSQL (asyncpg).

``sqlite:///path`` (the default, one machine) and ``postgresql://user@host/db`` (several
MTA hosts reporting as one organisation) are accepted as operators write them.

SQLAlchemy 2 Core describes the schema and builds every statement, compiled for the
URL's dialect; the statements run on aiosqlite / asyncpg directly. (SQLAlchemy's own
asyncio layer needs the greenlet package, which is not a dependency of this project.)
The schema is versioned with Alembic migrations run through these drivers
(:mod:`mtasts.store.migrate`); ``create_all`` remains for tests and tools.

Each database holds one connection, opened on first use. A connection the server or the
network dropped (``pg_terminate_backend``, a PostgreSQL restart, a failover) is noticed
and reopened on the next use; after any failed operation a caller that cannot tell
whether the connection is still sound calls :meth:`Database.reset`, which abandons it,
so the next use reconnects (the counter flusher does this, with back-off).
"""

from __future__ import annotations

import asyncio
import contextlib
import operator
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Protocol, cast
from urllib.parse import unquote

from sqlalchemy import MetaData, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql import ClauseElement

from mtasts.errors import ConfigError, MissingDependency, ServiceUnavailable
from mtasts.redact import redacted

Row = dict[str, Any]


def driver_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a database driver raises once connected (locked, server gone):
    the store is unavailable for now, which is not a bug of ours."""
    errors: tuple[type[BaseException], ...] = (sqlite3.Error,)
    try:
        import asyncpg  # type: ignore[import-untyped]
    except ImportError:
        return errors
    return (*errors, asyncpg.PostgresError, asyncpg.InterfaceError)


# PostgreSQL SQLSTATE classes that a configuration fixes (RFC-less, PostgreSQL Appendix A):
# 28 invalid authorization (user, password, pg_hba.conf), 3D invalid catalog (database).
_PG_CONFIG_CLASSES = ("28", "3D")


def postgres_connect_error(dsn: str, exc: BaseException) -> ConfigError | ServiceUnavailable:
    """A failed connection to the PostgreSQL store ``dsn`` as the operator's error."""
    where = redacted(dsn)
    state = str(getattr(exc, "sqlstate", "") or "")
    text = str(exc) or type(exc).__name__
    if state[:2] in _PG_CONFIG_CLASSES:
        return ConfigError(
            f"store {where}: {text}: check the user, password and database in the URL",
            code="config.store",
        )
    return ServiceUnavailable(
        f"store {where}: cannot connect ({text}): is PostgreSQL running and reachable?",
        code="store.unavailable",
    )


def parse_store_url(url: str) -> tuple[str, str]:
    """``(kind, target)``: ``("sqlite", path)`` or ``("postgresql", dsn)``; ConfigError else."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.split("+", 1)[0]
    if sep and scheme == "sqlite" and rest.startswith("/"):
        return "sqlite", unquote(rest[1:]) or ":memory:"
    if sep and scheme in ("postgresql", "postgres"):
        return "postgresql", f"postgresql://{rest}"
    raise ConfigError(
        f"store URL {url!r} is not supported: use sqlite:///path/to/file.db "
        "or postgresql://user@host/database"
    )


class Database(Protocol):
    """The few operations the stores need, on either backend."""

    dialect: Dialect

    async def fetch(self, stmt: ClauseElement) -> list[Row]: ...

    async def fetch_sql(self, sql: str) -> list[Row]:
        """A SELECT written whole by the caller, without parameters, run as is (no
        compiler: SQLAlchemy scans a ``text()`` with a regex when it is built and again
        when it is compiled, ~0.5 ms for an IN list of 256 digests). Only for SQL built
        from the schema's own names and values the caller has checked."""
        ...

    async def execute(self, stmt: ClauseElement) -> int: ...

    async def executemany(
        self,
        stmt: ClauseElement,
        rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
        columns: Sequence[str] | None = None,
    ) -> None:
        """Run ``stmt`` (an INSERT) for every row: mappings by column name, or, with
        ``columns``, sequences of values in that order (no dict a row)."""
        ...

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    def snapshot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A read-only transaction in which every read sees the same committed state
        (reads that belong together must not straddle another process's commit)."""
        ...

    async def create_all(self, metadata: MetaData) -> None: ...

    async def reset(self) -> None:
        """Abandon the connection (never raises): the next operation opens a new one."""
        ...

    async def close(self) -> None: ...


def dialect_insert(db: Database, table: Table) -> Any:
    """The INSERT of ``db``'s dialect for ``table`` (it has ``on_conflict_do_update`` and
    ``on_conflict_do_nothing``)."""
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _compile(dialect: Dialect, stmt: ClauseElement, keys: Sequence[str] | None = None) -> Any:
    return stmt.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)


def _params(compiled: Any, row: Mapping[str, Any] | None = None) -> list[Any]:
    values = compiled.construct_params(row)
    return [values[k] for k in compiled.positiontup]


def _ddl(dialect: Dialect, metadata: MetaData) -> list[str]:
    out = []
    for table in metadata.sorted_tables:
        out.append(str(CreateTable(table, if_not_exists=True).compile(dialect=dialect)))
        out += [
            str(CreateIndex(ix, if_not_exists=True).compile(dialect=dialect))
            for ix in table.indexes
        ]
    return out


def _many_params(compiled: Any, rows: Sequence[Mapping[str, Any]]) -> list[Sequence[Any]]:
    """:func:`_params` of every row. When every bound name is a key of the rows and no
    column type converts its value (true of the store's tables), the values are taken
    straight from the rows (one ``itemgetter`` call a row, in C): ``construct_params``
    costs ~10 µs a row, a third of a received report's store time."""
    names = compiled.positiontup
    processors = getattr(compiled, "_bind_processors", None)
    if names is None or processors is None or processors or not set(names) <= rows[0].keys():
        return [_params(compiled, r) for r in rows]
    if len(names) == 1:
        (name,) = names
        return [(r[name],) for r in rows]
    return list(map(operator.itemgetter(*names), rows))


def _in_order(compiled: Any, keys: tuple[str, ...]) -> bool:
    """Does ``compiled`` bind exactly ``keys``, in that order, without converting any?"""
    names = compiled.positiontup
    processors = getattr(compiled, "_bind_processors", None)
    return names is not None and processors is not None and not processors and tuple(names) == keys


# SQLite's INSERT of one row, as SQLAlchemy compiles it for the qmark style: the VALUES
# group holds placeholders only (anything else keeps executemany).
_ONE_ROW = re.compile(
    r"(INSERT INTO .+? VALUES )(\((?:\?, )*\?\))((?: ON CONFLICT .*)?)", re.DOTALL
)
# Bound values in one statement: SQLite's own limit before 3.32 (32,766 since).
_SQLITE_MAX_PARAMS = 999


def _multi_row(sql: str, params: Sequence[Sequence[Any]]) -> list[tuple[str, list[Any]]] | None:
    """``sql`` (an INSERT of one row) as INSERTs of many rows (``VALUES (..), (..)``),
    each with its flattened values, or None when it is no such INSERT. One statement
    steps once for many rows: the driver's per-row work (bind, step, reset, and a hand-off
    of the GIL with each step) is done once a statement. The rows are inserted in order,
    so ON CONFLICT resolves as it does row by row; a failing row fails its whole statement
    (inside the caller's transaction, as before)."""
    m = _ONE_ROW.fullmatch(sql)
    if m is None or "?" in m.group(1) + m.group(3):
        return None  # not one row of placeholders, or values bound outside it
    head, group, tail = m.groups()
    width = group.count("?")
    per = max(1, _SQLITE_MAX_PARAMS // width)
    out: list[tuple[str, list[Any]]] = []
    for i in range(0, len(params), per):
        part = params[i : i + per]
        flat: list[Any] = []
        for row in part:
            flat.extend(row)
        if len(flat) != width * len(part):
            return None  # a row of another width: let the driver say so
        out.append((head + ", ".join([group] * len(part)) + tail, flat))
    return out


class _Driver:
    """What both drivers share: positional parameters, and ``executemany`` (aiosqlite's
    and asyncpg's take the same arguments)."""

    dialect: Dialect
    # (id of the statement, column keys) -> (the statement, compiled, SQL). A caller that
    # passes the same statement object again (the receiving store's inserts) skips the
    # compiler (~1 ms); the statement is held so its id cannot be reused meanwhile.
    _compiled: dict[tuple[int, tuple[str, ...]], tuple[ClauseElement, Any, str]]
    _MAX_COMPILED = 64

    async def _get(self) -> Any:
        raise NotImplementedError

    async def executemany(
        self,
        stmt: ClauseElement,
        rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
        columns: Sequence[str] | None = None,
    ) -> None:
        if not rows:
            return
        conn = await self._get()
        keys = tuple(columns) if columns is not None else tuple(rows[0])
        cache = self._compiled
        hit = cache.get((id(stmt), keys))
        if hit is None or hit[0] is not stmt:
            if len(cache) >= self._MAX_COMPILED:
                cache.clear()
            c = _compile(self.dialect, stmt, keys)
            hit = cache[(id(stmt), keys)] = (stmt, c, str(c))
        _, c, sql = hit
        if columns is None:
            params = _many_params(c, cast(Sequence[Mapping[str, Any]], rows))
        elif _in_order(c, keys):
            params = cast(list[Sequence[Any]], list(rows))  # the values as they are
        else:
            named = [dict(zip(keys, row, strict=True)) for row in rows]
            params = _many_params(c, named)
        await self._executemany(conn, sql, params)

    async def _executemany(self, conn: Any, sql: str, params: list[Sequence[Any]]) -> None:
        await conn.executemany(sql, params)


# The sqlite3 module binds int, float and str as they are, but passes None and bytes to
# its adapter registry first; with no adapter registered it then looks up an __adapt__
# on its protocol type, which formats an AttributeError message it throws away (~1,200
# instructions a value, 37 K a received report: a sixth of the store thread's work).
# Registered adapters that return the value itself skip that; NULL and BLOB as before.
_none: Callable[[None], None] = cast(Callable[[None], None], {}.get)  # {}.get(None) is None, in C
sqlite3.register_adapter(type(None), _none)
sqlite3.register_adapter(bytes, bytes)  # (bytes(b) is b for bytes, in C)


# WAL pages between automatic checkpoints (SQLite's default is 1,000): at most ~40 MB of
# WAL on disk (4 KiB pages), reused after each checkpoint.
WAL_CHECKPOINT_PAGES = 10_000

# Bounded waits when a connection is abandoned or opened (a hung peer must not hang a
# flush or a shutdown for longer).
CLOSE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0


class SqliteDatabase(_Driver):
    """One SQLite file. Its connection runs in aiosqlite's thread; ``inline=True`` runs
    it on the caller's thread instead (a batch command: see :mod:`.sqliteopen`)."""

    dialect: Dialect = sqlite.dialect(paramstyle="qmark")

    def __init__(self, path: str, *, busy_timeout_ms: int = 10_000, inline: bool = False) -> None:
        import aiosqlite  # (now, not at the first connection: a process's memory at start
        # includes its driver; the collector's memory bound is measured from it)

        self._aiosqlite = aiosqlite
        self._compiled = {}
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.inline = inline
        self._conn: Any = None

    async def _get(self) -> Any:
        if self._conn is None:
            from mtasts.store.sqliteopen import connect_sqlite

            conn = await connect_sqlite(self.path, isolation_level=None, inline=self.inline)
            try:
                # WAL lets `mtasts tlsrpt reports` read while the collector writes;
                # busy_timeout makes a second writer wait instead of "database is locked";
                # synchronous=FULL syncs the WAL at every COMMIT: a commit that returned
                # survives a power loss (NORMAL, in WAL mode, may lose the last ones, and
                # the receiver answers 2xx/250 once a report is committed);
                # wal_autocheckpoint: the WAL is copied into the database file (which is
                # then synced) every WAL_CHECKPOINT_PAGES pages instead of SQLite's 1,000,
                # so an import of a few thousand reports does that once, at its close,
                # not every 4 MB;
                # temp_store=MEMORY keeps the statement journal of a many-row INSERT (the
                # pages one statement changed, to undo it alone: tens of pages) in memory
                # instead of a temporary file written a page at a time (half the write
                # system calls of an import).
                for pragma in (
                    f"busy_timeout={int(self.busy_timeout_ms)}",
                    "journal_mode=WAL",
                    "synchronous=FULL",
                    f"wal_autocheckpoint={WAL_CHECKPOINT_PAGES}",
                    "temp_store=MEMORY",
                ):
                    await conn.execute(f"PRAGMA {pragma}")
            except BaseException:
                await _quietly(conn.close())
                raise
            self._conn = conn
        return self._conn

    async def _executemany(self, conn: Any, sql: str, params: list[Sequence[Any]]) -> None:
        statements = _multi_row(sql, params) if len(params) > 1 else None
        if statements is None:
            await conn.executemany(sql, params)
            return
        for text, values in statements:
            await conn.execute(text, values)

    async def fetch(self, stmt: ClauseElement) -> list[Row]:
        conn = await self._get()
        c = _compile(self.dialect, stmt)
        async with conn.execute(str(c), _params(c)) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]

    async def fetch_sql(self, sql: str) -> list[Row]:
        conn = await self._get()
        async with conn.execute(sql) as cur:
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in await cur.fetchall()]

    async def execute(self, stmt: ClauseElement) -> int:
        conn = await self._get()
        c = _compile(self.dialect, stmt)
        async with conn.execute(str(c), _params(c)) as cur:
            return int(cur.rowcount)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        conn = await self._get()
        await _begin(conn, "BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        # A deferred transaction reads from one snapshot of the WAL from its first read on.
        conn = await self._get()
        await _begin(conn, "BEGIN")
        try:
            yield
        finally:
            await conn.execute("ROLLBACK")

    async def create_all(self, metadata: MetaData) -> None:
        conn = await self._get()
        for ddl in _ddl(self.dialect, metadata):
            await conn.execute(ddl)

    async def reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closing rolls back an open transaction; a connection whose worker thread
            # is stuck is left to it (bounded wait).
            await _quietly(conn.close())

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


class PostgresDatabase(_Driver):
    dialect: Dialect = postgresql.dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]

    def __init__(self, dsn: str, schema: str | None = None) -> None:
        try:
            import asyncpg  # (now: see SqliteDatabase)
        except ImportError:
            raise MissingDependency(
                f"the store {redacted(dsn)}", "postgres", module="asyncpg"
            ) from None

        self._asyncpg = asyncpg
        self._compiled = {}
        self.dsn = dsn
        self.schema = schema
        self._conn: Any = None

    async def _get(self) -> Any:
        if self._conn is not None and self._conn.is_closed():
            # The server or the network closed it (pg_terminate_backend, a restart, a
            # failover): asyncpg never reopens a connection by itself.
            self._conn = None
        if self._conn is None:
            settings = {"search_path": self.schema} if self.schema else None
            try:
                self._conn = await self._asyncpg.connect(
                    self.dsn, server_settings=settings, timeout=CONNECT_TIMEOUT
                )
            except (OSError, self._asyncpg.PostgresError) as exc:
                # (TimeoutError is an OSError)
                raise postgres_connect_error(self.dsn, exc) from exc
        return self._conn

    async def fetch(self, stmt: ClauseElement) -> list[Row]:
        conn = await self._get()
        c = _compile(self.dialect, stmt)
        return [dict(r) for r in await conn.fetch(str(c), *_params(c))]

    async def fetch_sql(self, sql: str) -> list[Row]:
        conn = await self._get()
        return [dict(r) for r in await conn.fetch(sql)]

    async def execute(self, stmt: ClauseElement) -> int:
        conn = await self._get()
        c = _compile(self.dialect, stmt)
        status = await conn.execute(str(c), *_params(c))
        tail = str(status).rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        conn = await self._get()
        async with conn.transaction():
            yield

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        conn = await self._get()
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            yield

    async def create_all(self, metadata: MetaData) -> None:
        conn = await self._get()
        async with conn.transaction():
            for ddl in _ddl(self.dialect, metadata):
                await conn.execute(ddl)

    async def reset(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            # terminate(), not close(): close() waits for the server, which may be gone.
            conn.terminate()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


async def _begin(conn: Any, sql: str) -> None:
    """``sql`` (a BEGIN) on an aiosqlite connection. Cancelled (a SIGTERM during start-up)
    or failed while it waited in the connection's thread (for a lock, or behind other
    work), the BEGIN may still take effect there afterwards, leaving the connection in a
    transaction nobody ends: the next BEGIN would fail with "cannot start a transaction
    within a transaction". A ROLLBACK queued behind it ends it (and fails harmlessly when
    no transaction began)."""
    try:
        await conn.execute(sql)
    except BaseException:
        await _quietly(conn.execute("ROLLBACK"))
        raise


async def _quietly(aw: Any) -> None:
    """Await ``aw`` for at most CLOSE_TIMEOUT, ignoring its failure (abandoning a
    connection that is already broken must not fail in turn)."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(aw, CLOSE_TIMEOUT)


def open_database(url: str, *, schema: str | None = None, inline: bool = False) -> Database:
    """The database named by ``url``; ``schema`` (PostgreSQL only) sets the search_path;
    ``inline`` (SQLite only): run SQLite on the caller's thread, for a batch command
    (:class:`mtasts.store.sqliteopen.InlineConnection`; asyncpg needs no thread)."""
    kind, target = parse_store_url(url)
    if kind == "sqlite":
        return SqliteDatabase(target, inline=inline)
    return PostgresDatabase(target, schema)
