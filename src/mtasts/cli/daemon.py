"""``mtasts daemon``: the Postfix socketmap TLS policy daemon; ``mtasts cache``: one domain's entry.

Settings come from mtasts.toml (``[daemon]`` plus the resolver's nameserver, ca_file,
[cache], [timeouts]), then ``MTASTS_*`` variables, then these options; or, to switch
from postfix-mta-sts-resolver in one step, from its YAML (``--pmsr-config``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

from mtasts.cli.options import F, given, names, resolver_options, setting_option, values
from mtasts.config import DEFAULT_PATH, Settings
from mtasts.errors import ServiceUnavailable
from mtasts.postfix.config import DaemonConfig
from mtasts.settings.tree import Tree, load, with_options

log = logging.getLogger("mtasts.daemon")


def read_config(path: Path | None, options: Mapping[str, tuple[str, Any]]) -> Tree:
    """The settings tree of the daemon: one TOML file (``path``, $MTASTS_CONFIG, default)
    < ``MTASTS_*`` environment < ``options`` (dotted key -> (option, value); None: not
    given). The file is read once and every section of it is checked."""
    return load(path, overrides=values(options), option_names=names(options))


def _zone_option(key: str, flag: str, text: str) -> Callable[[F], F]:
    return setting_option(f"daemon.default_zone.{key}", flag, default=None, help=text)


@click.command("daemon")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help=f"mtasts.toml ([daemon] and resolver settings). Default: $MTASTS_CONFIG, {DEFAULT_PATH}.",
)
@click.option(
    "--pmsr-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read postfix-mta-sts-resolver's YAML (/etc/mta-sts-daemon.yml) instead of [daemon].",
)
@setting_option(
    "daemon.listen",
    "--listen",
    multiple=True,
    help="HOST:PORT or unix:/PATH; repeat for several. Default 127.0.0.1:8461.",
)
@setting_option(
    "daemon.unix_mode",
    "--unix-mode",
    help="Octal mode of unix sockets (default 0666: smtp(8) is user postfix).",
)
@setting_option(
    "daemon.lookup_timeout",
    "--lookup-timeout",
    type=float,
    help="Seconds before answering TIMEOUT (default 75).",
)
@setting_option(
    "daemon.idle_timeout",
    "--idle-timeout",
    type=float,
    help="Close connections idle this long (default 300).",
)
@setting_option(
    "daemon.answer_ttl",
    "--answer-ttl",
    type=float,
    help="Reuse a rendered answer this long (default 1; 0 off).",
)
@setting_option(
    "daemon.shutdown_grace",
    "--shutdown-grace",
    type=float,
    help="Seconds to finish requests on SIGTERM (default 10).",
)
@setting_option(
    "daemon.max_connections",
    "--max-connections",
    type=int,
    help="Client connections held at once; the oldest idle one makes room (default 1000).",
)
@setting_option(
    "daemon.dane",
    "--dane/--no-dane",
    default=None,
    help="Answer dane-only where an MX host has usable validated TLSA (default on).",
)
@setting_option(
    "daemon.default_zone.dane_level",
    "--dane-level",
    type=click.Choice(["dane-only", "dane"]),
    help="Only dane-only: 'dane' is refused (weaker than the MTA-STS answer it replaces).",
)
@_zone_option(
    "match_patterns",
    "--match-patterns/--no-match-patterns",
    "Render '*.d' as '.d' (any depth) instead of exact MX names (default off).",
)
@_zone_option(
    "legacy_protocols",
    "--legacy-protocols/--no-legacy-protocols",
    "protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1 for Postfix < 3.6.",
)
@_zone_option("tlsrpt", "--tlsrpt/--no-tlsrpt", "Postfix 3.10 TLSRPT attributes.")
@_zone_option("servername", "--servername/--no-servername", "servername=hostname (Postfix >= 3.4).")
@_zone_option(
    "strict_testing", "--strict-testing/--no-strict-testing", "Enforce 'testing' policies too."
)
@setting_option(
    "daemon.metrics", "--metrics", help="HOST:PORT for /metrics and /cache (loopback!); '' = off."
)
@setting_option(
    "daemon.uvloop",
    "--uvloop/--no-uvloop",
    default=None,
    help="Use uvloop when installed (default on).",
)
@resolver_options
@setting_option(
    "tlsrpt.store",
    "--tlsrpt-store",
    help="Count policy failures (RFC 8461 §6) in this TLS-RPT store, the one `tlsrpt "
    "collect` writes. Env MTASTS_TLSRPT_STORE, or [tlsrpt] store. Default: not counted.",
)
@setting_option(
    "daemon.tlsrpt_spool",
    "--tlsrpt-spool",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where policy-failure counts go if the TLS-RPT store is down at shutdown "
    "(replayed at the next start; not the collector's spool). Env MTASTS_DAEMON_TLSRPT_SPOOL.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def daemon(config_path: Path | None, pmsr_config: Path | None, log_level: str) -> None:
    """Serve MTA-STS (and DANE-first) TLS policies to Postfix over socketmap.

    \b
    main.cf:  smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix
    Signals:  SIGTERM/SIGINT finish requests in flight, then exit 0.
    Every option is also a key of mtasts.toml ([daemon], [daemon.default_zone], the
    resolver's) and an MTASTS_* variable; an option wins over both, and a zone option
    over every zone. Exit codes: 0 stopped; 75 an address is in use or the cache
    unreachable; 78 a bad setting, address, file or URL (docs/exit-codes.md).
    """
    from mtasts.postfix.service import run_daemon
    from mtasts.runtime import run
    from mtasts.tlsrpt.settings import TlsRptSettings

    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # Alembic says at INFO which of its plugins it set up, at every start: not ours to show
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.root.level))
    options = given()
    tree = read_config(config_path, options)
    settings, cfg = tree.section(Settings), tree.section(DaemonConfig)
    if pmsr_config is not None:
        settings, cfg = _from_pmsr(pmsr_config, settings, cfg, options)
    cfg = cfg.zone_keys_everywhere(
        k.removeprefix("daemon.default_zone.")
        for k, (_, v) in options.items()
        if k.startswith("daemon.default_zone.") and v is not None
    )
    store = tree.section(TlsRptSettings).store or None
    if store is not None:
        from mtasts.store.engine import parse_store_url  # sqlalchemy: only when set

        parse_store_url(store)
    # A listen address in use or not ours, a cache or store that cannot be opened: the
    # `mtasts` group's handler words it (one line, docs/exit-codes.md).
    run(run_daemon(cfg, settings, store, cfg.tlsrpt_spool), uvloop=cfg.uvloop)


def _from_pmsr(
    path: Path, settings: Settings, cfg: DaemonConfig, options: Mapping[str, tuple[str, Any]]
) -> tuple[Settings, DaemonConfig]:
    """postfix-mta-sts-resolver's YAML instead of [daemon] (its cache and fetch timeout
    over the resolver's), the command-line options still on top."""
    from mtasts.postfix.pmsr import load_pmsr_file

    imported = load_pmsr_file(path)
    for note in imported.notes:
        log.warning("pmsr config: %s", note)
    pmsr = {"cache.url": imported.cache_url, "timeouts.total": imported.fetch_timeout}
    settings = with_options(settings, pmsr, dict.fromkeys(pmsr, "--pmsr-config"))
    # Options given on the command line win; one not given (None) must not wipe what
    # the pmsr file says (it replaced pmsr's cache with memory:).
    settings = with_options(settings, values(options), names(options))
    daemon = replace(imported.daemon, tlsrpt_spool=cfg.tlsrpt_spool)  # [daemon]'s spool
    return settings, with_options(daemon, values(options), names(options))


# --- mtasts cache show|purge|refresh DOMAIN ---------------------------------------------


@click.group("cache")
def cache() -> None:
    """Show, purge or refresh one domain's cached MTA-STS policy.

    \b
    With --daemon URL (the daemon's [daemon] metrics address) the running daemon does
    it, which also drops its rendered answer; without, the configured cache is opened
    directly (sqlite/redis/postgresql; a memory: cache lives only inside the daemon).
    Exit codes: 0 done; 1 not found or failed.
    """


_daemon_option = click.option(
    "--daemon",
    "daemon_url",
    envvar="MTASTS_DAEMON_URL",
    help="Daemon control URL, e.g. http://127.0.0.1:9461. Env MTASTS_DAEMON_URL.",
)
_config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="mtasts.toml (for the cache URL).",
)


def _emit(status: int, data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    if status != 200:
        sys.exit(1)


def _via_daemon(url: str, method: str, path: str, action: str) -> None:
    try:
        response = httpx.request(method, url.rstrip("/") + path, timeout=90)
    except httpx.HTTPError as exc:
        raise ServiceUnavailable(
            f"cannot reach the daemon at {url}: {exc}: is it running, with this [daemon] "
            "metrics address?",
            code="daemon.unreachable",
        ) from exc
    data = response.json()
    if action == "show" and response.status_code == 200:
        from mtasts.sts.cache.base import entry_from_json, entry_view

        data = entry_view(entry_from_json(data))  # the daemon answers the stored format
    _emit(response.status_code, data)


async def _direct(config_path: Path | None, action: str, domain: str) -> tuple[int, Any]:
    from mtasts.names import normalize_domain
    from mtasts.sts.cache import require_shared
    from mtasts.sts.cache.base import entry_view
    from mtasts.sts.resolver import Resolver

    settings = read_config(config_path, {}).section(Settings)
    require_shared(settings.cache.url)
    name = normalize_domain(domain)
    resolver = await Resolver.open(settings)
    try:
        if action == "show":
            entry = await resolver.cache.get(name)
            if entry is None:
                return 404, {"domain": name, "error": "not in the cache"}
            return 200, entry_view(entry)
        if action == "purge":
            await resolver.cache.delete(name)
            return 200, {"domain": name, "purged": True}
        return 200, (await resolver.refresh(name)).to_json()
    finally:
        await resolver.aclose()


def _cache_command(action: str, method: str, suffix: str, doc: str) -> click.Command:
    @click.command(action, help=doc)
    @click.argument("domain")
    @_daemon_option
    @_config_option
    def command(domain: str, daemon_url: str | None, config_path: Path | None) -> None:
        if daemon_url:
            _via_daemon(daemon_url, method, f"/cache/{domain}{suffix}", action)
            return
        from mtasts.runtime import run

        status, data = run(_direct(config_path, action, domain))
        _emit(status, data)

    return command


cache.add_command(_cache_command("show", "GET", "", "Print DOMAIN's cache entry as JSON."))
cache.add_command(_cache_command("purge", "DELETE", "", "Forget DOMAIN's cache entry."))
cache.add_command(
    _cache_command("refresh", "POST", "/refresh", "Re-check DOMAIN now; print the lookup.")
)


def register(group: click.Group) -> None:
    """Add ``daemon`` and ``cache`` to the ``mtasts`` group."""
    group.add_command(daemon)
    group.add_command(cache)
