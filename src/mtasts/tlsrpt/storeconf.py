"""Which TLS-RPT store to use: one setting for ``mtasts tlsrpt collect|reports|send`` and
for the daemon's policy-failure counts, so they all write and read the same database.

Precedence: a command-line option, then ``$MTASTS_TLSRPT_STORE``, then ``[tlsrpt] store``
of mtasts.toml (the settings tree, :mod:`mtasts.tlsrpt.settings`)::

    [tlsrpt]
    store = "postgresql://mtasts@db.example/tlsrpt"   # or sqlite:////var/lib/mtasts/tlsrpt.db

The ``tlsrpt`` commands fall back to :data:`DEFAULT_STORE`; the daemon counts policy
failures only when a store is set (an MTA that sends no reports gets no database).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mtasts.settings.tree import current, load
from mtasts.tlsrpt.settings import DEFAULT_STORE, TlsRptSettings

__all__ = ["DEFAULT_STORE", "ENV", "configured_store"]

ENV = "MTASTS_TLSRPT_STORE"


def configured_store(
    path: Path | str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """``$MTASTS_TLSRPT_STORE``, else ``[tlsrpt] store`` of the config file, else None.

    A set value is checked (:func:`~mtasts.store.engine.parse_store_url`): ConfigError.
    """
    # the process's tree (read once) unless another file or environment is asked for
    tree = current() if path is None and environ is None else load(path, environ=environ)
    url = tree.section(TlsRptSettings).store or None
    if url is not None:
        from mtasts.store.engine import parse_store_url  # sqlalchemy: only when set

        parse_store_url(url)
    return url
