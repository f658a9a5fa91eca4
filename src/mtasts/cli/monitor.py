"""``mtasts monitor``: watch domains over time (drift, a policy changed without a new id,
records that disappear, certificates running out, MX losing STARTTLS or TLS 1.2).

Settings: the ``[monitor]`` table of mtasts.toml (mtasts.monitor.settings), then the
options. Exit codes of ``--once`` (cron): 0 no condition, 1 a warning condition,
2 a critical condition, 3 a check or the store failed, or bad arguments/configuration.
The service (without ``--once``) runs until SIGTERM/SIGINT and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from dataclasses import replace

import click
from rich.markup import escape

from mtasts.check.runner import Target
from mtasts.cli.check import _BadArguments, _CheckCommand, _target
from mtasts.cli.exitcodes import print_error
from mtasts.cli.options import at_least, json_option, timeout_option
from mtasts.cli.render import console, print_json, titled, toned
from mtasts.monitor.service import Checked
from mtasts.monitor.settings import MonitorSettings
from mtasts.runtime import stop_event


def _exit_code(results: list[Checked]) -> int:
    code = 0
    for r in results:
        if r.error or not r.stored or any(c.key == "check.incomplete" for c in r.conditions):
            return 3
        for c in r.conditions:
            code = max(code, 2 if c.severity == "critical" else 1)
    return code


def _render(results: list[Checked]) -> None:
    out = console()
    for r in results:
        title = f"{r.domain}: check {r.report.status.name}, {len(r.conditions)} condition(s)"
        if not r.conditions and not r.cleared:
            out.print(f"{title} {toned('(nothing to watch out for)', 'ok')}", highlight=False)
            continue
        table = titled(title)
        table.add_column("")
        table.add_column("severity")
        table.add_column("condition", style="cyan")
        table.add_column("summary", overflow="fold")
        raised = {c.key for c in r.raised}
        for c in r.conditions:
            mark = "new" if c.key in raised else ""
            severity = toned(c.severity, c.severity)
            table.add_row(mark, severity, escape(c.key), escape(c.summary))
        for c in r.cleared:
            table.add_row("cleared", toned("ok", "ok"), escape(c.key), escape(c.summary))
        out.print(table)
        if r.error:
            out.print(f"[red]store:[/] {escape(r.error)}", highlight=False)


@click.command(cls=_CheckCommand)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    help="A domain to watch (repeat); replaces [monitor] domains.",
)
@click.option("--once", is_flag=True, help="Check every domain once and exit (for cron).")
@click.option(
    "--store",
    default=None,
    help="Where the check history is kept (default: [monitor] store or "
    "$MTASTS_MONITOR_STORE, else the TLS-RPT store: [tlsrpt] store or "
    "sqlite:////var/lib/mtasts/tlsrpt.db).",
)
@at_least(
    "--interval",
    60,
    help="Seconds between checks of a domain ([monitor] interval, 3600; [monitor] "
    "intervals still apply).",
)
@at_least(
    "--jitter",
    0,
    help="Up to this many seconds added at random to each wait ([monitor] jitter, 300).",
)
@at_least(
    "--concurrency",
    1,
    maximum=256,
    help="Domains checked at the same time ([monitor] concurrency, 4).",
)
@click.option(
    "--metrics",
    default=None,
    help="HOST:PORT of a Prometheus listener of its own ([monitor] metrics).",
)
@click.option(
    "--history",
    "history_of",
    default=None,
    metavar="DOMAIN",
    help="Print DOMAIN's stored checks (newest first) instead of checking.",
)
@at_least(
    "--limit",
    1,
    maximum=10_000,
    default=20,
    help="With --history: how many checks.",
)
@timeout_option("Seconds allowed per domain check (default 90).")
@json_option("Print JSON (with --once or --history).")
def monitor(
    domains: tuple[str, ...],
    once: bool,
    store: str | None,
    interval: int | None,
    jitter: int | None,
    concurrency: int | None,
    metrics: str | None,
    history_of: str | None,
    limit: int,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Watch domains over time: drift, policy changes without a new id, certificates.

    \b
    Runs the checks of `mtasts check` for each domain on its schedule, keeps every result
    as history in the store, raises and clears conditions (logged; --json with --once)
    and exports Prometheus gauges with --metrics.
    Exit codes with --once: 0 nothing, 1 warning, 2 critical, 3 check/store failure.
    """
    from mtasts.cli.configured import settings_tree
    from mtasts.errors import ConfigError, DomainNameError, MtastsError
    from mtasts.names import normalize_domain
    from mtasts.tlsrpt.storeconf import DEFAULT_STORE, configured_store

    tree = settings_tree(
        {
            "monitor.interval": ("--interval", interval),
            "monitor.jitter": ("--jitter", jitter),
            "monitor.concurrency": ("--concurrency", concurrency),
            "monitor.metrics": ("--metrics", metrics),
            "monitor.store": ("--store", store),
        }
    )
    try:
        settings = tree.section(MonitorSettings)
        if domains:  # --domain replaces the list (per-domain intervals of others dropped)
            names = [normalize_domain(d) for d in domains]
            kept = {d: s for d, s in settings.intervals.items() if normalize_domain(d) in names}
            settings = replace(settings, domains=tuple(names), intervals=kept)
        url = settings.store or configured_store() or DEFAULT_STORE
        target = _target(timeout)
    except (ConfigError, DomainNameError, ValueError) as exc:
        raise _BadArguments(str(exc)) from None
    if history_of is None and not settings.domains:
        raise _BadArguments("no domain to watch: give --domain or [monitor] domains")
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("mtasts.monitor").setLevel(logging.INFO)
    try:
        code = asyncio.run(_main(url, settings, target, once, history_of, limit, as_json))
    except MtastsError as exc:
        print_error(str(exc))
        code = 3
    except OSError as exc:
        print_error(str(exc))
        code = 3
    sys.exit(code)


async def _main(
    url: str,
    settings: MonitorSettings,
    target: Target,
    once: bool,
    history_of: str | None,
    limit: int,
    as_json: bool,
) -> int:
    from mtasts.monitor import history
    from mtasts.monitor.metrics import serve
    from mtasts.monitor.service import Monitor
    from mtasts.store.engine import open_database
    from mtasts.store.migrate import upgrade

    db = open_database(url)
    # the stop signals stay handled until the cleanup below is done (a second SIGTERM
    # must not cut the store's close short)
    signals = contextlib.ExitStack()
    try:
        try:
            await upgrade(db)
        except Exception as exc:  # a driver's own error: server gone, database locked
            print_error(f"the store {url.split('@')[-1]} failed: {exc}")
            return 3
        if history_of is not None:
            records = await history.check_history(db, history_of, limit=limit)
            if as_json:
                print_json([r.to_json() for r in records])
            else:
                for r in records:
                    keys = ", ".join(c.key for c in r.conditions) or "-"
                    click.echo(f"{r.checked_at:%Y-%m-%d %H:%M:%S}Z {r.status:<8} {keys}")
            return 0
        mon = Monitor(db, settings, target)
        server = serve(mon.metrics, *settings.metrics) if settings.metrics else None
        if server is not None:
            host, port = server.server_address[:2]
            logging.getLogger("mtasts.monitor").info("metrics on http://%s:%s/metrics", host, port)
        try:
            if once:
                results = await mon.run_once()
                if as_json:
                    print_json([r.to_json() for r in results])
                else:
                    _render(results)
                return _exit_code(results)
            stop = signals.enter_context(stop_event())
            logging.getLogger("mtasts.monitor").info(
                "watching %d domain(s), %d at a time",
                len(settings.domains),
                settings.concurrency,
            )
            await mon.run_forever(stop)
            return 0
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
    finally:
        try:
            await db.close()
        finally:
            signals.close()
