"""``mtasts web``: the dashboard and JSON API over the received TLS-RPT reports.

Settings: the ``[web]`` table of mtasts.toml (mtasts.web.settings), then the options.
Exit status (docs/exit-codes.md): 0 stopped by SIGTERM/SIGINT; 2 usage; 75 the store
is unreachable or the address in use; 78 a bad setting.
"""

from __future__ import annotations

import asyncio
import sys

import click
from rich.markup import escape

from mtasts.cli.render import console


@click.command("web")
@click.option(
    "--store",
    help="The receiving store: sqlite:////var/lib/mtasts/tlsrpt.db or postgresql://user@host/db "
    "(default: [web] store, else [tlsrpt] store). Env: MTASTS_WEB_STORE.",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where to listen (default: [web] listen, else 127.0.0.1:8461). Anything but "
    "loopback requires [web.users]. Env: MTASTS_WEB_LISTEN.",
)
@click.option(
    "--hash-password",
    is_flag=True,
    help="Read a password from standard input (or ask for it) and print its scrypt hash "
    "for [web.users.NAME] password, then exit.",
)
def web(store: str | None, listen: str | None, hash_password: bool) -> None:
    """Serve the dashboard and JSON API over the received TLS-RPT reports.

    \b
    Pages: / (every domain's health), /domain/NAME (charts, failures by
    result type, reporter, MX and sending IP, reported vs published policy,
    reporters that stopped), /reports and /reports/ID (raw JSON, repairs,
    arrivals). JSON under /api/ (docs/web.md). Read-only: GET only.

    \b
    Exit codes: 0 stopped by SIGTERM/SIGINT; 2 usage; 75 the store is unreachable
    or the address in use; 78 a bad setting (docs/exit-codes.md).
    """
    from mtasts.web.auth import hash_password as make_hash

    if hash_password:
        if sys.stdin.isatty():
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("an empty password: type one, or pipe it in")
        click.echo(make_hash(password))
        return

    from mtasts.cli.configured import settings_tree
    from mtasts.config import Settings
    from mtasts.errors import ServiceUnavailable
    from mtasts.store.engine import driver_errors
    from mtasts.tlsrpt.storeconf import DEFAULT_STORE, configured_store
    from mtasts.web.server import check_exposure, run_until_signalled
    from mtasts.web.settings import WebSettings

    tree = settings_tree({"web.store": ("--store", store), "web.listen": ("--listen", listen)})
    base = tree.section(Settings)
    settings = tree.section(WebSettings)
    url = settings.store or configured_store() or DEFAULT_STORE
    check_exposure(settings)

    def ready(address: str) -> None:
        console().print(
            escape(f"mtasts web: serving {url.split('@')[-1]} on {address}"), highlight=False
        )
        sys.stdout.flush()  # a pipe (systemd, a test) sees it now

    # A bad setting, an address in use: one line from the `mtasts` group (exit-codes.md).
    try:
        asyncio.run(run_until_signalled(settings, url, base=base, ready=ready))
    except driver_errors() as exc:  # a driver error after connecting (database gone)
        raise ServiceUnavailable(f"the store failed: {type(exc).__name__}: {exc}") from exc
