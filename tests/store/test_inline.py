"""SQLite run inline (a batch command's store): the same answers as aiosqlite's thread,
on the caller's thread, with the same errors; a writer elsewhere is waited for, within
busy_timeout, not forever."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, select, update

from mtasts.errors import ConfigError
from mtasts.store.engine import SqliteDatabase, dialect_insert, open_database

META = MetaData()
ITEMS = Table(
    "items",
    META,
    Column("pk", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("body", LargeBinary),
)


async def _insert_then_fail(db: SqliteDatabase, insert: Any) -> None:
    async with db.transaction():
        await db.executemany(insert, [("late", b"x")], ("name", "body"))
        await db.executemany(insert, [("n1", b"dup")], ("name", "body"))  # unique


async def _begin_only(db: SqliteDatabase) -> None:
    async with db.transaction():
        pass


async def _work(db: SqliteDatabase) -> list[Any]:
    """Every operation the stores use, with its answers."""
    out: list[Any] = []
    await db.create_all(META)
    insert = dialect_insert(db, ITEMS)
    async with db.transaction():
        await db.executemany(
            insert, [(f"n{i}", bytes([i]) * i) for i in range(50)], ("name", "body")
        )
        await db.executemany(insert, [{"name": "one", "body": None}])
    with pytest.raises(sqlite3.IntegrityError):
        await _insert_then_fail(db, insert)
    out.append(await db.fetch(select(ITEMS).order_by(ITEMS.c.pk)))
    out.append(await db.fetch_sql("SELECT name FROM items WHERE pk > 48 ORDER BY pk"))
    out.append(await db.execute(update(ITEMS).where(ITEMS.c.pk < 10).values(body=b"")))
    async with db.snapshot():
        out.append(await db.fetch_sql("SELECT count(*) AS n FROM items"))
    await db.reset()  # abandoned: the next use reopens
    out.append(await db.fetch_sql("SELECT count(*) AS n FROM items WHERE body = x''"))
    return out


async def test_inline_sqlite_answers_as_the_threaded_driver_does(tmp_path: Path) -> None:
    threaded = SqliteDatabase(str(tmp_path / "t.db"))
    inline = SqliteDatabase(str(tmp_path / "i.db"), inline=True)
    try:
        expected = await _work(threaded)
        assert await _work(inline) == expected
        assert [r["name"] for r in expected[1]] == ["n48", "n49", "one"]
        assert expected[2] == 9
        assert expected[3] == [{"n": 51}]  # "late" was rolled back with its transaction
    finally:
        await threaded.close()
        await inline.close()


async def test_inline_sqlite_runs_on_the_callers_thread_and_starts_none(tmp_path: Path) -> None:
    before = threading.active_count()
    db = SqliteDatabase(str(tmp_path / "i.db"), inline=True)
    try:
        conn = await db._get()
        conn._conn.create_function("thread_id", 0, threading.get_ident)
        rows = await db.fetch_sql("SELECT thread_id() AS t")
        assert rows == [{"t": threading.get_ident()}]
        assert threading.active_count() == before
        # the pragmas of every store connection apply as they do in aiosqlite's thread
        pragmas = {
            p: (await db.fetch_sql(f"PRAGMA {p}"))[0][p]
            for p in ("journal_mode", "synchronous", "temp_store")
        }
        assert pragmas == {"journal_mode": "wal", "synchronous": 2, "temp_store": 2}
    finally:
        await db.close()


async def test_inline_open_errors_name_the_fix(tmp_path: Path) -> None:
    missing = open_database(f"sqlite:///{tmp_path / 'no' / 'r.db'}", inline=True)
    with pytest.raises(ConfigError, match="does not exist: create it"):
        await missing.fetch_sql("SELECT 1")
    (tmp_path / "dir.db").mkdir()
    a_dir = open_database(f"sqlite:///{tmp_path / 'dir.db'}", inline=True)
    with pytest.raises(ConfigError, match="cannot open the database"):
        await a_dir.fetch_sql("SELECT 1")


def _hold_write_lock(path: Path, seconds: float, started: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    started.set()
    time.sleep(seconds)
    conn.execute("COMMIT")
    conn.close()


async def test_an_inline_writer_waits_for_another_writer_within_busy_timeout(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.db"
    db = SqliteDatabase(str(path), inline=True, busy_timeout_ms=5_000)
    try:
        await db.create_all(META)
        started = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 0.3, started))
        holder.start()
        started.wait(5)
        begun = time.monotonic()
        async with db.transaction():
            await db.executemany(dialect_insert(db, ITEMS), [("after", None)], ("name", "body"))
        assert time.monotonic() - begun >= 0.2  # it waited for the other writer
        holder.join()
        assert await db.fetch_sql("SELECT name FROM items") == [{"name": "after"}]
    finally:
        await db.close()
    short = SqliteDatabase(str(path), inline=True, busy_timeout_ms=100)
    try:
        started = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 1.5, started))
        holder.start()
        started.wait(5)
        begun = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            await _begin_only(short)
        assert time.monotonic() - begun < 1.2  # busy_timeout, not the holder's 1.5 s
        holder.join()
        async with short.transaction():  # the failed BEGIN left no transaction open
            await short.executemany(
                dialect_insert(short, ITEMS), [("later", None)], ("name", "body")
            )
    finally:
        await short.close()
