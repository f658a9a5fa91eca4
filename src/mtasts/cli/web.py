"""``mtasts web``: the dashboard and JSON API over the received TLS-RPT reports.

Settings: the ``[web]`` table of mtasts.toml (mtasts.web.settings), then the options.
Exit status: 0 stopped by SIGTERM/SIGINT; 1 the store failed; 2 bad settings.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace

import click

from mtasts.cli.render import console, fail


@click.command("web")
@click.option(
    "--store",
    envvar="MTASTS_WEB_STORE",
    help="The receiving store: sqlite:////var/lib/mtasts/tlsrpt.db or postgresql://user@host/db "
    "(default: [web] store, else [tlsrpt] store). Env: MTASTS_WEB_STORE.",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    envvar="MTASTS_WEB_LISTEN",
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
    Exit codes: 0 stopped by SIGTERM/SIGINT; 1 the store failed; 2 bad settings.
    """
    from mtasts.web.auth import hash_password as make_hash

    if hash_password:
        if sys.stdin.isatty():
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        else:
            password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            fail("an empty password", code=2)
        click.echo(make_hash(password))
        return

    from mtasts.config import component_table, load_settings
    from mtasts.errors import ConfigError
    from mtasts.tlsrpt.storeconf import DEFAULT_STORE, configured_store
    from mtasts.web.server import check_exposure, run_until_signalled
    from mtasts.web.settings import web_settings

    try:
        base = load_settings()
        settings = web_settings(component_table("web"))
        if listen:
            settings = replace(settings, listen=listen)
        url = store or settings.store or configured_store() or DEFAULT_STORE
        check_exposure(settings)
    except ConfigError as exc:
        fail(str(exc), code=2)
        return

    def ready(address: str) -> None:
        console().print(f"mtasts web: serving {url.split('@')[-1]} on {address}")

    try:
        asyncio.run(run_until_signalled(settings, url, base=base, ready=ready))
    except ConfigError as exc:
        fail(str(exc), code=2)
    except OSError as exc:
        fail(f"cannot serve: {exc}", code=1)
    except Exception as exc:  # a driver error (database gone, wrong password)
        fail(f"the store failed: {type(exc).__name__}: {exc}", code=1)
