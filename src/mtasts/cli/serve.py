"""``mtasts serve policy``: the web server endpoint for ``/.well-known/mta-sts.txt``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import sys
from pathlib import Path

import click

from mtasts.config import parse_hostport
from mtasts.errors import ConfigError, MtastsError
from mtasts.postfix.sockets import raise_open_files_limit
from mtasts.publish.limits import ClientLimits
from mtasts.publish.server import (
    DEFAULT_MAX_CONNECTIONS,
    READ_TIMEOUT,
    PolicyServer,
    ServerLimits,
    load_config,
    load_directory,
    server_tls_context,
)
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
    directory: Path | None,
    config: Path | None,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    limits: ServerLimits,
) -> None:
    server = PolicyServer(_load(directory, config), tls, limits)
    bound = await server.start(host, port)
    scheme = "https" if server.tls else "http"
    address = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    domains = ", ".join(sorted(server.site.policies))
    per_client = limits.per_client
    click.echo(
        f"serving MTA-STS policies for {domains} on {scheme}://{address}:{bound[1]} "
        f"(at most {server.connection_cap} connections; per client: "
        + (
            f"{per_client.max_open or 'any number'} at once, "
            f"{f'{per_client.rate:g}' if per_client.rate else 'any number of'} new a second)"
            if per_client
            else "no limit)"
        ),
        err=True,
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
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    envvar="MTASTS_SERVE_MAX_CONNECTIONS",
    help="Connections at once; lowered to fit the open-files limit. At the cap the oldest "
    "connection still waiting for its request is closed. Env: MTASTS_SERVE_MAX_CONNECTIONS.",
)
@click.option(
    "--max-per-client",
    type=click.IntRange(min=0),
    default=None,
    envvar="MTASTS_SERVE_MAX_PER_CLIENT",
    help="Connections at once from one client (an IPv4 address or an IPv6 /64); 0 = no "
    "limit. Default 16 with --cert, none for plain HTTP (behind a proxy every connection "
    "comes from the proxy). Env: MTASTS_SERVE_MAX_PER_CLIENT.",
)
@click.option(
    "--client-rate",
    type=click.FloatRange(min=0),
    default=None,
    envvar="MTASTS_SERVE_CLIENT_RATE",
    help="New connections a second from one client, sustained (bursts of 5 seconds' worth); "
    "0 = no limit. Default 10 with --cert, none for plain HTTP. Env: MTASTS_SERVE_CLIENT_RATE.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(min=0.1),
    default=READ_TIMEOUT,
    show_default=True,
    envvar="MTASTS_SERVE_READ_TIMEOUT",
    help="Seconds for the TLS handshake and the request head together, and for the answer. "
    "Env: MTASTS_SERVE_READ_TIMEOUT.",
)
def serve_policy(
    directory: Path | None,
    config: Path | None,
    listen: str,
    cert: Path | None,
    key: Path | None,
    max_connections: int,
    max_per_client: int | None,
    client_rate: float | None,
    read_timeout: float,
) -> None:
    """Serve /.well-known/mta-sts.txt for many domains, chosen by the Host header.

    Without --cert/--key it speaks plain HTTP, for a TLS-terminating proxy (nginx,
    Caddy) in front. Unknown hosts and paths get 404; nothing is ever redirected.
    SIGHUP re-reads the policies. Exit codes: 0 stopped; 1 bad configuration.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # The accept loop is the daemon's; its "listening on" lines repeat our start line.
    logging.getLogger("mtasts.daemon").setLevel(logging.WARNING)
    try:
        host, port = parse_hostport(listen, default_port=8080, what="listen address")
        if (cert is None) != (key is None):
            raise ConfigError("--cert and --key go together")
        tls = server_tls_context(cert, key) if cert is not None and key is not None else None
        _load(directory, config)  # fail early, before binding
        raise_open_files_limit()  # the soft limit up to the hard one (systemd LimitNOFILE=)
        limits = ServerLimits(
            max_connections=max_connections,
            per_client=_client_limits(max_per_client, client_rate, https=tls is not None),
            read_timeout=read_timeout,
        )
        asyncio.run(_serve(directory, config, host, port, tls, limits))
    except MtastsError as exc:
        click.echo(f"mtasts serve policy: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:
        click.echo(f"mtasts serve policy: cannot listen on {listen}: {exc.strerror}", err=True)
        sys.exit(1)


def _client_limits(max_open: int | None, rate: float | None, *, https: bool) -> ClientLimits | None:
    """Per-client limits: on by default when we terminate TLS ourselves, else off."""
    defaults = ClientLimits() if https else ClientLimits(max_open=0, rate=0)
    max_open = defaults.max_open if max_open is None else max_open
    rate = defaults.rate if rate is None else rate
    if not max_open and not rate:
        return None
    return ClientLimits(max_open=max_open, rate=rate, burst=max(1, round(rate * 5)))
