"""Opening an SQLite file (the TLS-RPT store, the policy cache) with an error that says
what to do: a missing or unwritable directory is the operator's to fix.

A connection is aiosqlite's (each call runs in the connection's own thread, so the event
loop answers while SQLite writes and syncs: what a service needs) or, for a batch command
that has nothing else to serve, an :class:`InlineConnection` (the same calls, run at once
on the caller's thread: no hand-off to another thread and back for every statement, and
no second thread contending for the GIL and the CPU; an import takes 11-18 % less CPU).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from mtasts.errors import ConfigError

JOIN_TIMEOUT = 5.0


def sqlite_open_error(path: str, exc: BaseException, *, what: str = "store") -> ConfigError:
    """Why the SQLite ``what`` at ``path`` cannot be opened, and what to do, in one line."""
    parent = Path(path).resolve().parent
    if not parent.exists():
        why = f"the directory {parent} does not exist: create it (mkdir -p {parent})"
    elif not parent.is_dir():
        why = f"{parent} is not a directory: choose another path"
    elif not os.access(parent, os.W_OK | os.X_OK):
        why = f"the directory {parent} is not writable: give the user running mtasts access"
    else:
        why = f"cannot open the database ({exc}): is it an SQLite file mtasts may write?"
    return ConfigError(f"{what} sqlite:///{path}: {why}", code=f"config.{what}")


def _directory_exists(path: str) -> bool:
    return Path(path).resolve().parent.is_dir()


class _Cursor:
    """An executed statement, as aiosqlite's cursor offers it (the part the stores use)."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _Result:
    """``connection.execute(...)``: awaited, the cursor; or ``async with`` it (closed at
    the end), as aiosqlite's. The statement runs when awaited or entered."""

    __slots__ = ("_conn", "_cursor", "_parameters", "_sql")

    def __init__(self, conn: sqlite3.Connection, sql: str, parameters: Sequence[Any]) -> None:
        self._conn, self._sql, self._parameters = conn, sql, parameters
        self._cursor: _Cursor | None = None

    async def _run(self) -> _Cursor:
        await asyncio.sleep(0)  # a point where a cancel (Ctrl-C, SIGTERM) lands: see below
        return _Cursor(self._conn.execute(self._sql, self._parameters))

    def __await__(self) -> Generator[Any, None, _Cursor]:
        return self._run().__await__()

    async def __aenter__(self) -> _Cursor:
        self._cursor = await self._run()
        return self._cursor

    async def __aexit__(self, *exc: object) -> None:
        if self._cursor is not None:
            await self._cursor.close()


class InlineConnection:
    """aiosqlite's connection API (the part the stores use: ``execute``, ``executemany``,
    ``close``) over a plain sqlite3 connection, each call run at once on the caller's
    thread. The event loop waits while a statement runs (a COMMIT waits for its sync,
    a BEGIN IMMEDIATE for another writer, up to busy_timeout): for batch commands only.

    Each statement first yields to the loop once, as the hand-off to aiosqlite's thread
    did: there a cancelled task stops (asyncio.run cancels on Ctrl-C) and its transaction
    rolls back. Without it a command would run to its end and only then report the
    interruption, with its work committed."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Result:
        return _Result(self._conn, sql, parameters)

    async def executemany(self, sql: str, parameters: Sequence[Sequence[Any]]) -> None:
        await asyncio.sleep(0)
        self._conn.executemany(sql, parameters)

    async def close(self) -> None:
        self._conn.close()


async def connect_sqlite(
    path: str, *, what: str = "store", inline: bool = False, **options: Any
) -> Any:
    """``aiosqlite.connect(path, **options)``, or with ``inline`` an
    :class:`InlineConnection`; a failure is :func:`sqlite_open_error`'s."""
    if path != ":memory:" and not _directory_exists(path):
        raise sqlite_open_error(path, FileNotFoundError(path), what=what)
    if inline:
        try:
            return InlineConnection(sqlite3.connect(path, **options))
        except (OSError, sqlite3.Error) as exc:
            raise sqlite_open_error(path, exc, what=what) from exc
    pending = aiosqlite.connect(path, **options)
    try:
        return await pending
    except (OSError, sqlite3.Error) as exc:
        # aiosqlite's worker thread answers its stop request on our loop: let it finish
        # before the loop may close (else "Event loop is closed" is raised in that thread)
        worker = getattr(pending, "_thread", None)
        if worker is not None:
            await asyncio.to_thread(worker.join, JOIN_TIMEOUT)
        raise sqlite_open_error(path, exc, what=what) from exc
