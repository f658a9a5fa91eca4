"""``[tlsrpt]`` for the ``mtasts tlsrpt`` commands: the section with the command's
options on top (:func:`mtasts.cli.options.setting_option`), the store it names, the
reporter every report carries, and the ``--day`` option's value."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import click

from mtasts.cli.options import setting_option
from mtasts.clock import utc_today

if TYPE_CHECKING:
    from mtasts.settings.tree import Tree
    from mtasts.tlsrpt.settings import TlsRptSettings

STORE_HELP = (
    "sqlite:////var/lib/mtasts/tlsrpt.db (default) or postgresql://user@host/db. "
    "Env MTASTS_TLSRPT_STORE; [tlsrpt] store"
)

store_option = setting_option("tlsrpt.store", "--store", help=STORE_HELP)


def settings_tree() -> Tree:
    """mtasts.toml < ``MTASTS_*`` < the running command's setting options."""
    from mtasts.cli.configured import settings_tree as tree_with
    from mtasts.cli.options import given

    return tree_with(given())


def tlsrpt_settings() -> TlsRptSettings:
    """``[tlsrpt]`` with the running command's options on top."""
    from mtasts.tlsrpt.settings import TlsRptSettings

    return settings_tree().section(TlsRptSettings)


def store_url(cfg: TlsRptSettings) -> str:
    """The configured store (the daemon counts policy failures into the same one)."""
    from mtasts.store.engine import parse_store_url
    from mtasts.tlsrpt.settings import DEFAULT_STORE

    url = cfg.store or DEFAULT_STORE
    parse_store_url(url)  # a ConfigError: exit 78, one line (docs/exit-codes.md)
    return url


def reporter(cfg: TlsRptSettings) -> tuple[str, str]:
    """organization and contact, which every report names (RFC 8460 §4.4)."""
    missing = [
        f"--{key} (or [tlsrpt] {key}, MTASTS_TLSRPT_{key.upper()})"
        for key in ("organization", "contact")
        if not getattr(cfg, key)
    ]
    if missing:
        raise click.UsageError("reports need " + " and ".join(missing))
    return cfg.organization, cfg.contact


def day_of(value: str | None) -> date:
    """``--day``'s UTC day (default: yesterday); a usage error when it is not a day."""
    if value is None:
        return utc_today() - timedelta(days=1)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day: write YYYY-MM-DD") from None
