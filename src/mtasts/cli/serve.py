"""``mtasts serve policy``: the web server endpoint for ``/.well-known/mta-sts.txt``."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import click

from mtasts.acme.settings import AcmeSettings
from mtasts.cli.options import at_least, existing_file
from mtasts.config import Settings, read_file
from mtasts.errors import ConfigError, MtastsError
from mtasts.postfix.sockets import raise_open_files_limit
from mtasts.publish.limits import ClientLimits
from mtasts.publish.server import (
    PolicyServer,
    ServerLimits,
    load_config,
    load_directory,
    load_policies,
    server_tls_context,
)
from mtasts.publish.settings import ServeSettings
from mtasts.publish.site import Site
from mtasts.rfcnames import policy_host
from mtasts.runtime import on_signals, stop_event
from mtasts.settings.tree import load


@click.group()
def serve() -> None:
    """Run mtasts servers."""


async def _serve(
    site: Callable[[], Site],
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    limits: ServerLimits,
    acme: AcmeSettings | None = None,
    nameserver: tuple[str, int] | None = None,
) -> None:
    policies = site()
    manager = None
    if acme is not None:
        # imported here: the `acme` library is an optional extra (mtasts[acme])
        try:
            from mtasts.acme.serve import acme_manager, start_acme
        except ImportError as exc:
            raise ConfigError(
                f"--acme needs the acme extra ({exc.name} is missing): pip install 'mtasts[acme]'"
            ) from exc
        manager = acme_manager(acme, policies, nameserver)
        tls = manager.server_context
    server = PolicyServer(policies, tls, limits)
    extra: list[PolicyServer] = []
    try:
        bound = await server.start(host, port)
        if manager is not None:
            # listening first: a tls-alpn-01 validation may come as soon as we order
            extra = await start_acme(manager, limits)
    except BaseException:
        await server.close()
        if manager is not None:
            await manager.close()
        raise
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

    def reload() -> None:
        try:
            server.reload(site())
            if manager is not None:  # new domains get certificates, gone ones are dropped
                manager.set_names(policy_host(d) for d in server.site.policies)
            click.echo("policies reloaded", err=True)
        except MtastsError as exc:
            click.echo(f"reload failed, keeping the old policies: {exc}", err=True)

    # the signals stay handled until the servers are closed: a second SIGTERM during the
    # close must not kill the process
    with (
        stop_event(where_possible=True) as stop,
        on_signals(reload, (signal.SIGHUP,), where_possible=True),
    ):
        try:
            await stop.wait()
        finally:
            await server.close()
            for other in extra:
                await other.close()
            if manager is not None:
                await manager.close()


@serve.command("policy")
@click.option(
    "--dir",
    "directory",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A directory of <domain>.txt policy files (as `mtasts policy generate -o DIR` "
    "writes). [serve] dir.",
)
@existing_file(
    "--config",
    help="mtasts.toml (its [serve] section), or an older policies file: a TOML file with "
    'only a [policies] table: "example.com" = "path/to/policy.txt".',
)
@click.option("--listen", help="host:port to listen on (default 127.0.0.1:8080). [serve] listen.")
@existing_file(
    "--cert",
    help="TLS certificate chain (PEM); serves HTTPS.",
)
@existing_file(
    "--key",
    help="TLS private key (PEM).",
)
@click.option(
    "--acme",
    is_flag=True,
    default=None,
    help="Obtain and renew a certificate for every mta-sts.<domain> from an ACME CA "
    "(Let's Encrypt by default; settings: [acme], docs/acme.md). Instead of --cert/--key. "
    "[serve] acme.",
)
@at_least(
    "--max-connections",
    1,
    help="Connections at once (default 1000); lowered to fit the open-files limit. At the "
    "cap the oldest connection still waiting for its request is closed.",
)
@at_least(
    "--max-per-client",
    0,
    help="Connections at once from one client (an IPv4 address or an IPv6 /64); 0 = no "
    "limit. Default 16 with --cert, none for plain HTTP (behind a proxy every connection "
    "comes from the proxy).",
)
@click.option(
    "--client-rate",
    type=click.FloatRange(min=0),
    help="New connections a second from one client, sustained (bursts of 5 seconds' worth); "
    "0 = no limit. Default 10 with --cert, none for plain HTTP.",
)
@click.option(
    "--read-timeout",
    type=click.FloatRange(min=0.1),
    help="Seconds for the TLS handshake and the request head together, and for the answer "
    "(default 10).",
)
def serve_policy(
    directory: Path | None,
    config: Path | None,
    listen: str | None,
    cert: Path | None,
    key: Path | None,
    acme: bool | None,
    max_connections: int | None,
    max_per_client: int | None,
    client_rate: float | None,
    read_timeout: float | None,
) -> None:
    """Serve /.well-known/mta-sts.txt for many domains, chosen by the Host header.

    Without --cert/--key it speaks plain HTTP, for a TLS-terminating proxy (nginx,
    Caddy) in front. Unknown hosts and paths get 404; nothing is ever redirected.
    SIGHUP re-reads the policies. Every option is also a key of [serve] in mtasts.toml
    and an MTASTS_SERVE_<KEY> variable. Exit codes: 0 stopped; 75 the address is in use;
    78 a bad policy, certificate, key or address (docs/exit-codes.md).
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # The accept loop is the daemon's; its "listening on" lines repeat our start line.
    logging.getLogger("mtasts.daemon").setLevel(logging.WARNING)
    # A bad file, an address in use: one line from the `mtasts` group (docs/exit-codes.md).
    policies_file = None
    if config is not None and _is_policies_file(config):
        policies_file = config  # the older format: a file of [policies] only
    options = {
        "serve.dir": ("--dir", directory),
        "serve.listen": ("--listen", listen),
        "serve.cert": ("--cert", cert),
        "serve.key": ("--key", key),
        "serve.acme": ("--acme", acme),
        "serve.max_connections": ("--max-connections", max_connections),
        "serve.max_per_client": ("--max-per-client", max_per_client),
        "serve.client_rate": ("--client-rate", client_rate),
        "serve.read_timeout": ("--read-timeout", read_timeout),
    }
    tree = load(
        None if policies_file is not None else config,
        overrides={k: v for k, (_, v) in options.items()},
        option_names={k: name for k, (name, _) in options.items()},
    )
    cfg = tree.section(ServeSettings)
    if directory is not None or policies_file is not None:
        cfg = replace(cfg, dir=directory, policies={})  # the option wins over the file

    def site() -> Site:
        return _site(cfg, policies_file, tree.file)

    tls = (
        server_tls_context(cfg.cert, cfg.key)
        if cfg.cert is not None and cfg.key is not None
        else None
    )
    site()  # fail early, before binding
    raise_open_files_limit()  # the soft limit up to the hard one (systemd LimitNOFILE=)
    limits = ServerLimits(
        max_connections=cfg.max_connections,
        per_client=_client_limits(
            cfg.max_per_client, cfg.client_rate, https=tls is not None or cfg.acme
        ),
        read_timeout=cfg.read_timeout,
    )
    acme_cfg = tree.section(AcmeSettings) if cfg.acme else None
    nameserver = tree.section(Settings).nameserver
    asyncio.run(_serve(site, cfg.listen.host, cfg.listen.port, tls, limits, acme_cfg, nameserver))


def _is_policies_file(path: Path) -> bool:
    """An older `serve policy --config` file: a [policies] table and nothing else."""
    try:
        data = read_file(path)
    except ConfigError:
        return False
    return set(data) == {"policies"}


def _site(cfg: ServeSettings, policies_file: Path | None, config_file: Path | None) -> Site:
    """The policies to serve: --config's older file, [serve] dir or [serve.policies]."""
    if policies_file is not None:
        return load_config(policies_file)
    if cfg.dir is not None:
        return load_directory(cfg.dir)
    if cfg.policies:
        return load_policies(cfg.policies, config_file or Path("mtasts.toml"))
    raise ConfigError(
        "no policies to serve: give --dir DIR, or set [serve] dir or [serve.policies] "
        "in mtasts.toml"
    )


def _client_limits(max_open: int | None, rate: float | None, *, https: bool) -> ClientLimits | None:
    """Per-client limits: on by default when we terminate TLS ourselves, else off."""
    defaults = ClientLimits() if https else ClientLimits(max_open=0, rate=0)
    max_open = defaults.max_open if max_open is None else max_open
    rate = defaults.rate if rate is None else rate
    if not max_open and not rate:
        return None
    return ClientLimits(max_open=max_open, rate=rate, burst=max(1, round(rate * 5)))
