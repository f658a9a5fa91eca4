"""Which TLS-RPT store to use: one setting for ``mtasts tlsrpt collect|reports|send`` and
for the daemon's policy-failure counts, so they all write and read the same database.

Precedence: a command-line option, then ``$MTASTS_TLSRPT_STORE``, then ``[tlsrpt] store``
of mtasts.toml::

    [tlsrpt]
    store = "postgresql://mtasts@db.example/tlsrpt"   # or sqlite:////var/lib/mtasts/tlsrpt.db

The ``tlsrpt`` commands fall back to :data:`DEFAULT_STORE`; the daemon counts policy
failures only when a store is set (an MTA that sends no reports gets no database).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mtasts.config import component_table
from mtasts.errors import ConfigError

DEFAULT_STORE = "sqlite:////var/lib/mtasts/tlsrpt.db"
ENV = "MTASTS_TLSRPT_STORE"
_KEYS = frozenset({"store"})


def configured_store(
    path: Path | str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """``$MTASTS_TLSRPT_STORE``, else ``[tlsrpt] store`` of the config file, else None.

    A set value is checked (:func:`~mtasts.store.engine.parse_store_url`): ConfigError.
    """
    env = os.environ if environ is None else environ
    url = env.get(ENV) or None
    if url is None:
        table = component_table("tlsrpt", path, environ=env)
        unknown = sorted(set(table) - _KEYS)
        if unknown:
            raise ConfigError(
                f"unknown setting {unknown[0]!r} in [tlsrpt]; known: store",
                code="config.invalid",
            )
        value = table.get("store")
        if value is not None and not isinstance(value, str):
            raise ConfigError("[tlsrpt] store must be a URL string", code="config.invalid")
        url = value or None
    if url is not None:
        from mtasts.store.engine import parse_store_url  # sqlalchemy: only when set

        parse_store_url(url)
    return url
