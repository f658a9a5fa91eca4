"""Opening an SQLite file (the TLS-RPT store, the policy cache) with an error that says
what to do: a missing or unwritable directory is the operator's to fix."""

from __future__ import annotations

import asyncio
import os
import sqlite3
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


async def connect_sqlite(path: str, *, what: str = "store", **options: Any) -> Any:
    """``aiosqlite.connect(path, **options)``; a failure is :func:`sqlite_open_error`'s."""
    if path != ":memory:" and not _directory_exists(path):
        raise sqlite_open_error(path, FileNotFoundError(path), what=what)
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
