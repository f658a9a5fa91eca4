"""SQLite inserts of many rows in one statement (``engine._multi_row``) store exactly
what inserting the rows one by one stores: the same rows in the same order, ON CONFLICT
resolved row after row (a key repeated inside one statement included), statements cut
under SQLite's 999-value limit, and a failing row failing the caller's transaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.dialects.sqlite import insert

from mtasts.store.engine import (
    _SQLITE_MAX_PARAMS,
    WAL_CHECKPOINT_PAGES,
    SqliteDatabase,
    _multi_row,
)

_meta = MetaData()
_kv = Table(
    "kv",
    _meta,
    Column("k", String(8), primary_key=True),
    Column("n", Integer, nullable=False),
    Column("note", String(8), nullable=True),
)


def test_one_row_insert_becomes_many_rows() -> None:
    sql = "INSERT INTO t (a, b) VALUES (?, ?) ON CONFLICT DO NOTHING"
    out = _multi_row(sql, [(1, "x"), (2, None), (3, "z")])
    assert out == [
        (
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?) ON CONFLICT DO NOTHING",
            [1, "x", 2, None, 3, "z"],
        )
    ]


def test_statements_stay_under_the_value_limit() -> None:
    width = 25
    names = ", ".join(f"c{i}" for i in range(width))
    sql = f"INSERT INTO t ({names}) VALUES ({', '.join(['?'] * width)})"
    rows = [tuple(range(width))] * 100
    out = _multi_row(sql, rows)
    assert out is not None
    assert [len(values) // width for _, values in out] == [39, 39, 22]
    assert all(len(values) <= _SQLITE_MAX_PARAMS for _, values in out)
    assert all(text.count("?") == len(values) for text, values in out)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE t SET a = ?",
        "INSERT INTO t (a) SELECT a FROM u WHERE b = ?",
        "INSERT INTO t (a, b) VALUES (?, 3)",  # a literal: not placeholders only
        "INSERT INTO t (a) VALUES (?) ON CONFLICT (a) DO UPDATE SET b = ?",  # bound outside
        "DELETE FROM t WHERE a = ?",
    ],
)
def test_other_statements_are_left_to_executemany(sql: str) -> None:
    assert _multi_row(sql, [(1,), (2,)]) is None


def test_a_row_of_another_width_is_left_to_the_driver() -> None:
    assert _multi_row("INSERT INTO t (a, b) VALUES (?, ?)", [(1, 2), (3,)]) is None


def _one_by_one(path: Path, rows: list[dict[str, Any]], upsert: bool) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE kv (k VARCHAR(8) PRIMARY KEY, n INTEGER NOT NULL, note VARCHAR(8))")
    tail = (
        " ON CONFLICT (k) DO UPDATE SET n = kv.n + excluded.n"
        if upsert
        else " ON CONFLICT DO NOTHING"
    )
    for r in rows:
        sql = f"INSERT INTO kv (k, n, note) VALUES (?, ?, ?){tail}"
        conn.execute(sql, (r["k"], r["n"], r["note"]))
    conn.commit()
    out = conn.execute("SELECT k, n, note FROM kv ORDER BY rowid").fetchall()
    conn.close()
    return out


async def _ours(path: Path, rows: list[dict[str, Any]], upsert: bool) -> list[tuple[Any, ...]]:
    db = SqliteDatabase(str(path))
    try:
        await db.create_all(_meta)
        stmt = insert(_kv)
        stmt = (
            stmt.on_conflict_do_update(index_elements=["k"], set_={"n": _kv.c.n + stmt.excluded.n})
            if upsert
            else stmt.on_conflict_do_nothing()
        )
        async with db.transaction():
            await db.executemany(stmt, rows)
        conn = await db._get()
        async with conn.execute("SELECT k, n, note FROM kv ORDER BY rowid") as cur:
            return [tuple(r) for r in await cur.fetchall()]
    finally:
        await db.close()


_rows = st.lists(
    st.fixed_dictionaries(
        {
            "k": st.sampled_from(["a", "b", "c", "d"]) | st.text(max_size=8),
            "n": st.integers(-(2**63), 2**63 - 1),
            "note": st.none() | st.text(max_size=8),
        }
    ),
    min_size=2,
    max_size=600,  # several statements of 333 rows
)


@settings(max_examples=40, deadline=None)
@given(rows=_rows, upsert=st.booleans())
def test_many_rows_store_what_row_by_row_stores(
    tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]], upsert: bool
) -> None:
    import asyncio

    base = tmp_path_factory.mktemp("multi")
    if upsert:
        # keep the sum inside SQLite's integer range (an overflow fails both ways)
        rows = [{**r, "n": r["n"] % 1000} for r in rows]
    try:
        want = _one_by_one(base / "ref.db", rows, upsert)
    except (sqlite3.Error, UnicodeEncodeError):
        return  # (lone surrogates: neither path can store them)
    assert asyncio.run(_ours(base / "ours.db", rows, upsert)) == want


async def test_a_failing_row_fails_the_transaction_and_keeps_what_was_stored(
    tmp_path: Path,
) -> None:
    db = SqliteDatabase(str(tmp_path / "s.db"))
    try:
        await db.create_all(_meta)
        async with db.transaction():
            await db.executemany(insert(_kv), [{"k": "keep", "n": 1, "note": None}] * 1)
        bad = [{"k": f"r{i}", "n": i, "note": None} for i in range(500)]
        bad[400]["k"] = "r3"  # a repeated primary key in the second statement
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction():
                await db.executemany(insert(_kv), bad)
        conn = await db._get()
        async with conn.execute("SELECT k FROM kv") as cur:
            assert [r[0] for r in await cur.fetchall()] == ["keep"]
    finally:
        await db.close()


async def test_statement_journals_stay_in_memory(tmp_path: Path) -> None:
    """A many-row INSERT inside a transaction keeps a statement journal (to undo that
    statement alone); in memory, not in a temporary file written a page at a time."""
    db = SqliteDatabase(str(tmp_path / "s.db"))
    try:
        conn = await db._get()
        async with conn.execute("PRAGMA temp_store") as cur:
            assert (await cur.fetchone())[0] == 2  # MEMORY
    finally:
        await db.close()


async def test_a_commit_is_synced_and_checkpoints_are_rare(tmp_path: Path) -> None:
    """synchronous=FULL: the WAL is synced at every COMMIT, so a report acknowledged
    after its commit survives a power loss (NORMAL may lose the last commits in WAL
    mode); the WAL is checkpointed every WAL_CHECKPOINT_PAGES pages, not SQLite's 1,000."""
    db = SqliteDatabase(str(tmp_path / "s.db"))
    try:
        conn = await db._get()
        async with conn.execute("PRAGMA journal_mode") as cur:
            assert (await cur.fetchone())[0] == "wal"
        async with conn.execute("PRAGMA synchronous") as cur:
            assert (await cur.fetchone())[0] == 2  # FULL
        async with conn.execute("PRAGMA wal_autocheckpoint") as cur:
            assert (await cur.fetchone())[0] == WAL_CHECKPOINT_PAGES > 1000
    finally:
        await db.close()


async def test_none_and_bytes_bind_as_null_and_blob(tmp_path: Path) -> None:
    """The adapters registered for None and bytes (a shortcut past the sqlite3 module's
    adapter look-up) change nothing that is stored."""
    db = SqliteDatabase(str(tmp_path / "s.db"))
    try:
        conn = await db._get()
        await conn.execute("CREATE TABLE b (x, y)")
        await conn.execute("INSERT INTO b VALUES (?, ?)", (None, b"\x00\x1f\x8b"))
        async with conn.execute("SELECT x, typeof(x), y, typeof(y) FROM b") as cur:
            assert await cur.fetchall() == [(None, "null", b"\x00\x1f\x8b", "blob")]
    finally:
        await db.close()
