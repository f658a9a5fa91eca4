"""The TLS-RPT store as the receiving side's commands take it: one ``--store`` option
(``$MTASTS_TLSRPT_STORE``, else ``[tlsrpt] store``) and one way to run against it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

T = TypeVar("T")
STORE_HELP = (
    "sqlite:////var/lib/mtasts/tlsrpt.db (default) or postgresql://user@host/db; "
    "else [tlsrpt] store of mtasts.toml"
)


def default_store() -> str:
    """``[tlsrpt] store`` of mtasts.toml, else the default SQLite file (a bad setting: a
    ConfigError, exit 78 from the ``mtasts`` group, docs/exit-codes.md)."""
    from mtasts.tlsrpt.storeconf import DEFAULT_STORE, configured_store

    return configured_store() or DEFAULT_STORE


def store_option(f: Any) -> Any:
    """``--store URL`` (the ``store`` parameter)."""
    return click.option(
        "--store", default=default_store, envvar="MTASTS_TLSRPT_STORE", help=STORE_HELP
    )(f)


def run_on_store(coro: Callable[[], Awaitable[T]]) -> T:
    """Run ``coro``; a database error after connecting is the store being unavailable
    (every other operator's error reaches the ``mtasts`` group's handler as it is)."""
    from mtasts.errors import ServiceUnavailable
    from mtasts.store.engine import driver_errors

    try:
        return asyncio.run(coro())  # type: ignore[arg-type]
    except driver_errors() as exc:
        raise ServiceUnavailable(f"the store failed: {type(exc).__name__}: {exc}") from exc
