"""``mtasts daemon``: the Postfix socketmap TLS policy daemon; ``mtasts cache``: one domain's entry.

Settings come from mtasts.toml (``[daemon]`` plus the resolver's nameserver, ca_file,
[cache], [timeouts]), then ``MTASTS_*`` variables, then these options; or, to switch
from postfix-mta-sts-resolver in one step, from its YAML (``--pmsr-config``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

from mtasts.config import DEFAULT_PATH, Settings, load_settings
from mtasts.errors import ConfigError, ServiceUnavailable
from mtasts.postfix.answers import ServerSettings
from mtasts.postfix.config import (
    DaemonConfig,
    Listen,
    check_count,
    check_seconds,
    dane_level,
    metrics_listen,
)
from mtasts.postfix.pmsr import load_pmsr_file
from mtasts.postfix.server import (
    SocketmapServer,
    raise_open_files_limit,
    sd_notify,
)
from mtasts.sts.cache.base import redacted
from mtasts.tlsrpt.storeconf import configured_store

log = logging.getLogger("mtasts.daemon")


def read_config(path: Path | None, overrides: dict[str, Any]) -> tuple[Settings, DaemonConfig]:
    """Resolver settings and ``[daemon]`` from one TOML file (``path``, $MTASTS_CONFIG, default).

    The file is read once (:func:`mtasts.settings.tree.load`: file < ``MTASTS_*``
    environment < ``overrides``); every section of it is checked.
    """
    from mtasts.settings.tree import load

    tree = load(path, overrides=overrides)
    return tree.section(Settings), tree.section(DaemonConfig)


async def run_daemon(
    cfg: DaemonConfig,
    settings: Settings,
    tlsrpt_store: str | None = None,
    tlsrpt_spool: Path | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; tell systemd when ready and when stopping.

    ``tlsrpt_store``: count policy failures there (RFC 8461 §6), as ``tlsrpt collect``
    counts libtlsrpt's sessions.
    """
    from mtasts.postfix.admin import Admin
    from mtasts.postfix.dane import DaneProbe, warn_unless_validating
    from mtasts.postfix.failures import PolicyFailures
    from mtasts.postfix.mxlookup import MxAwareSource, MxCache
    from mtasts.sts.resolver import Resolver
    from mtasts.tlsrpt.store import TlsRptStore

    soft, hard = raise_open_files_limit()
    failures = (
        PolicyFailures(TlsRptStore.open(tlsrpt_store), spool=tlsrpt_spool) if tlsrpt_store else None
    )
    resolver = await Resolver.open(settings)
    resolver.start()
    # the MX hosts (exact match= names) and DANE detection: the policy resolver's settings
    mx = MxCache.for_nameserver(settings.nameserver, settings.timeouts.dns)
    dane = DaneProbe(mx=mx) if cfg.dane else None
    server = SocketmapServer(
        MxAwareSource(resolver, mx),
        ServerSettings(
            zones=cfg.zones,
            default_zone=cfg.default_zone,
            lookup_timeout=cfg.lookup_timeout,
            idle_timeout=cfg.idle_timeout,
            answer_ttl=cfg.answer_ttl,
            shutdown_grace=cfg.shutdown_grace,
            max_connections=cfg.max_connections,
        ),
        dane=dane,
        failures=failures,
    )
    admin = Admin(server, resolver, dane.forget if dane is not None else mx.forget)
    stop = asyncio.Event()
    checks: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if failures is not None:
        failures.start()
    try:
        bound: list[str] = []
        for listen in cfg.listen:
            if listen.path:
                bound.append("unix:" + await server.listen_unix(listen.path, cfg.unix_mode))
            else:
                host, port = await server.listen_tcp(listen.host, listen.port)
                bound.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        if cfg.metrics:
            m = metrics_listen(cfg.metrics, "metrics")
            host, port = await admin.listen(m.host, m.port)
            bound.append(f"metrics http://{host}:{port}/")
        sd_notify("READY=1")
        if dane is not None:  # say once, at start, if the resolver cannot show DNSSEC status
            ns = settings.nameserver
            where = f"{ns[0]}:{ns[1]}" if ns else "from resolv.conf"
            checks.add(asyncio.create_task(warn_unless_validating(mx.resolver, where)))
        log.info(
            "ready: socketmap on %s; nameserver=%s cache=%s dane=%s tlsrpt_store=%s "
            "open_files=%d (hard %d)",
            ", ".join(bound),
            settings.nameserver or "resolv.conf",
            redacted(resolver.cache.url),
            cfg.dane,
            redacted(tlsrpt_store) if tlsrpt_store else "none (policy failures not counted)",
            soft,
            hard,
        )
        await stop.wait()
        log.info("stopping")
        sd_notify("STOPPING=1")
    finally:
        for task in checks:
            task.cancel()
        await server.close()
        await admin.close()
        if failures is not None:
            await failures.close()
        await resolver.aclose()


def _run(coro_factory: Any, use_uvloop: bool) -> None:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            log.info("uvloop not installed; using asyncio's loop")
        else:
            uvloop.run(coro_factory())
            return
    asyncio.run(coro_factory())


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
@click.option(
    "--listen",
    multiple=True,
    help="HOST:PORT or unix:/PATH; repeat for several. Default 127.0.0.1:8461.",
)
@click.option(
    "--unix-mode", help="Octal mode of unix sockets (default 0666: smtp(8) is user postfix)."
)
@click.option("--lookup-timeout", type=float, help="Seconds before answering TIMEOUT (default 75).")
@click.option("--idle-timeout", type=float, help="Close connections idle this long (default 300).")
@click.option(
    "--answer-ttl", type=float, help="Reuse a rendered answer this long (default 1; 0 off)."
)
@click.option(
    "--shutdown-grace", type=float, help="Seconds to finish requests on SIGTERM (default 10)."
)
@click.option(
    "--max-connections",
    type=int,
    help="Client connections held at once; the oldest idle one makes room (default 1000).",
)
@click.option(
    "--dane/--no-dane",
    default=None,
    help="Answer dane-only where an MX host has usable validated TLSA (default on).",
)
@click.option(
    "--dane-level",
    type=click.Choice(["dane-only", "dane"]),
    help="Only dane-only: 'dane' is refused (weaker than the MTA-STS answer it replaces).",
)
@click.option(
    "--match-patterns/--no-match-patterns",
    default=None,
    help="Render '*.d' as '.d' (any depth) instead of exact MX names (default off).",
)
@click.option(
    "--legacy-protocols/--no-legacy-protocols",
    default=None,
    help="protocols=!SSLv2:!SSLv3:!TLSv1:!TLSv1.1 for Postfix < 3.6.",
)
@click.option(
    "--tlsrpt/--no-tlsrpt", default=None, help="Postfix 3.10 TLSRPT attributes (default zone)."
)
@click.option(
    "--servername/--no-servername", default=None, help="servername=hostname (Postfix >= 3.4)."
)
@click.option(
    "--strict-testing/--no-strict-testing", default=None, help="Enforce 'testing' policies too."
)
@click.option("--metrics", help="HOST:PORT for /metrics and /cache (loopback!); '' = off.")
@click.option("--uvloop/--no-uvloop", default=None, help="Use uvloop when installed (default on).")
@click.option(
    "--nameserver", help="DNS server HOST:PORT (default: resolv.conf). Env MTASTS_NAMESERVER."
)
@click.option("--ca-file", help="CA bundle for policy hosts. Env MTASTS_CA_FILE.")
@click.option(
    "--cache",
    "cache_url",
    help="Cache URL: memory:, sqlite:///PATH, redis://..., postgresql://... Env MTASTS_CACHE.",
)
@click.option(
    "--tlsrpt-store",
    help="Count policy failures (RFC 8461 §6) in this TLS-RPT store, the one `tlsrpt "
    "collect` writes. Env MTASTS_TLSRPT_STORE, or [tlsrpt] store. Default: not counted.",
)
@click.option(
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
def daemon(
    config_path: Path | None,
    pmsr_config: Path | None,
    listen: tuple[str, ...],
    unix_mode: str | None,
    lookup_timeout: float | None,
    idle_timeout: float | None,
    answer_ttl: float | None,
    shutdown_grace: float | None,
    max_connections: int | None,
    dane: bool | None,
    dane_level: str | None,
    match_patterns: bool | None,
    legacy_protocols: bool | None,
    tlsrpt: bool | None,
    servername: bool | None,
    strict_testing: bool | None,
    metrics: str | None,
    uvloop: bool | None,
    nameserver: str | None,
    ca_file: str | None,
    cache_url: str | None,
    tlsrpt_store: str | None,
    tlsrpt_spool: Path | None,
    log_level: str,
) -> None:
    """Serve MTA-STS (and DANE-first) TLS policies to Postfix over socketmap.

    \b
    main.cf:  smtp_tls_policy_maps = socketmap:inet:127.0.0.1:8461:postfix
    Signals:  SIGTERM/SIGINT finish requests in flight, then exit 0.
    Exit codes: 0 stopped; 75 an address is in use or the cache unreachable; 78 a bad
    setting, address, file or URL (docs/exit-codes.md).
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    # Alembic says at INFO which of its plugins it set up, at every start: not ours to show
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.root.level))
    overrides = {"nameserver": nameserver, "ca_file": ca_file, "cache.url": cache_url}
    settings, cfg = read_config(config_path, overrides)
    spool = tlsrpt_spool or cfg.tlsrpt_spool  # [daemon] even with --pmsr-config
    if pmsr_config is not None:
        imported = load_pmsr_file(pmsr_config)
        for note in imported.notes:
            log.warning("pmsr config: %s", note)
        cfg = imported.daemon
        extra = {"cache.url": imported.cache_url, "timeouts.total": imported.fetch_timeout}
        # Options given on the command line win; an option not given (None) must not
        # wipe what the pmsr file says (it replaced pmsr's cache with memory:).
        given = {k: v for k, v in overrides.items() if v is not None}
        settings = load_settings(
            os.devnull,
            environ={},
            overrides={**_settings_values(settings), **extra, **given},
        )
    cfg = _apply_options(
        cfg,
        listen=listen,
        unix_mode=unix_mode,
        lookup_timeout=lookup_timeout,
        idle_timeout=idle_timeout,
        answer_ttl=answer_ttl,
        shutdown_grace=shutdown_grace,
        max_connections=max_connections,
        dane=dane,
        dane_level=dane_level,
        match_patterns=match_patterns,
        legacy_protocols=legacy_protocols,
        tlsrpt=tlsrpt,
        servername=servername,
        strict_testing=strict_testing,
        metrics=metrics,
        uvloop=uvloop,
    )
    if tlsrpt_store:
        from mtasts.store.engine import parse_store_url

        parse_store_url(tlsrpt_store)
    else:
        tlsrpt_store = configured_store(config_path)
    # A listen address in use or not ours, a cache or store that cannot be opened: the
    # `mtasts` group's handler words it (one line, docs/exit-codes.md).
    _run(lambda: run_daemon(cfg, settings, tlsrpt_store, spool), cfg.uvloop)


def _settings_values(s: Settings) -> dict[str, Any]:
    return {
        "nameserver": s.nameserver,
        "ca_file": s.ca_file,
        "https_port": s.https_port,
        "smtp_port": s.smtp_port,
        "cache.url": s.cache.url,
        "timeouts.dns": s.timeouts.dns,
        "timeouts.connect": s.timeouts.connect,
        "timeouts.read": s.timeouts.read,
        "timeouts.total": s.timeouts.total,
    }


def _apply_options(cfg: DaemonConfig, **opts: Any) -> DaemonConfig:
    """Command-line options over the file's values (None = not given)."""
    changes: dict[str, Any] = {}
    if opts["listen"]:
        changes["listen"] = tuple(Listen.parse(x) for x in opts["listen"])
    if opts["unix_mode"] is not None:
        try:
            changes["unix_mode"] = int(opts["unix_mode"], 8)
        except ValueError:
            raise ConfigError(f"--unix-mode {opts['unix_mode']!r} is not octal") from None
    for key in ("lookup_timeout", "idle_timeout", "answer_ttl", "shutdown_grace"):
        if opts[key] is not None:
            positive = key in ("lookup_timeout", "idle_timeout")
            option = "--" + key.replace("_", "-")
            changes[key] = check_seconds(opts[key], option, positive=positive)
    if opts["max_connections"] is not None:
        changes["max_connections"] = check_count(opts["max_connections"], "--max-connections")
    for key in ("dane", "uvloop"):
        if opts[key] is not None:
            changes[key] = opts[key]
    if opts["metrics"] is not None:
        if opts["metrics"]:
            metrics_listen(opts["metrics"], "--metrics")
        changes["metrics"] = opts["metrics"]
    zone = cfg.default_zone
    zone_changes: dict[str, Any] = {}
    for key in ("tlsrpt", "servername", "strict_testing", "match_patterns", "legacy_protocols"):
        if opts[key] is not None:
            zone_changes[key] = opts[key]
    if opts["dane_level"] is not None:
        zone_changes["dane_level"] = dane_level(opts["dane_level"], "--dane-level:")
    if zone_changes:
        changes["default_zone"] = replace(zone, **zone_changes)
        changes["zones"] = {n: replace(z, **zone_changes) for n, z in cfg.zones.items()}
    return replace(cfg, **changes)


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

    settings, _ = read_config(config_path, {})
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
        status, data = asyncio.run(_direct(config_path, action, domain))
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
