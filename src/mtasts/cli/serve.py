"""``mtasts serve policy``: the web server endpoint for ``/.well-known/mta-sts.txt``."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import ssl
import sys
from pathlib import Path

import click

from mtasts.config import parse_hostport
from mtasts.errors import ConfigError, MtastsError
from mtasts.publish.server import PolicyServer, load_config, load_directory, server_tls_context
from mtasts.publish.site import Site


@click.group()
def serve() -> None:
    """Run mtasts servers."""


def _load(directory: Path | None, config: Path | None) -> Site:
    if directory is not None and config is None:
        return load_directory(directory)
    if config is not None and directory is None:
        return load_config(config)
    raise ConfigError("give exactly one of --dir and --config")


async def _serve(
    directory: Path | None, config: Path | None, host: str, port: int, tls: ssl.SSLContext | None
) -> None:
    server = PolicyServer(_load(directory, config), tls)
    bound = await server.start(host, port)
    scheme = "https" if server.tls else "http"
    domains = ", ".join(sorted(server.site.policies))
    click.echo(
        f"serving MTA-STS policies for {domains} on {scheme}://{bound[0]}:{bound[1]}", err=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def reload() -> None:
        try:
            server.reload(_load(directory, config))
            click.echo("policies reloaded", err=True)
        except MtastsError as exc:
            click.echo(f"reload failed, keeping the old policies: {exc}", err=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, reload)
    try:
        await stop.wait()
    finally:
        await server.close()


@serve.command("policy")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory of <domain>.txt policy files (as `mtasts policy generate -o DIR` writes).",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='A TOML file with a [policies] table: "example.com" = "path/to/policy.txt".',
)
@click.option(
    "--listen",
    default="127.0.0.1:8080",
    show_default=True,
    envvar="MTASTS_SERVE_LISTEN",
    help="host:port to listen on. Env: MTASTS_SERVE_LISTEN.",
)
@click.option(
    "--cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS certificate chain (PEM); serves HTTPS.",
)
@click.option(
    "--key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TLS private key (PEM).",
)
def serve_policy(
    directory: Path | None,
    config: Path | None,
    listen: str,
    cert: Path | None,
    key: Path | None,
) -> None:
    """Serve /.well-known/mta-sts.txt for many domains, chosen by the Host header.

    Without --cert/--key it speaks plain HTTP, for a TLS-terminating proxy (nginx,
    Caddy) in front. Unknown hosts and paths get 404; nothing is ever redirected.
    SIGHUP re-reads the policies. Exit codes: 0 stopped; 1 bad configuration.
    """
    try:
        host, port = parse_hostport(listen, default_port=8080, what="listen address")
        if (cert is None) != (key is None):
            raise ConfigError("--cert and --key go together")
        tls = server_tls_context(cert, key) if cert is not None and key is not None else None
        _load(directory, config)  # fail early, before binding
        asyncio.run(_serve(directory, config, host, port, tls))
    except MtastsError as exc:
        click.echo(f"mtasts serve policy: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"mtasts serve policy: cannot listen on {listen}: {exc.strerror}", err=True)
        sys.exit(1)
