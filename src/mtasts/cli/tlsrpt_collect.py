"""``mtasts tlsrpt collect``: count the TLS outcome of every SMTP session into the store.

From libtlsrpt's datagrams (Postfix 3.10+ ``smtp_tlsrpt_socket_name``; a drop-in for
tlsrpt-collectd: :mod:`mtasts.tlsrpt.collect.collector`) or, for older Postfix, from its
log (``--postfix-log``: :mod:`mtasts.tlsrpt.collect.fromlog`).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import click

from mtasts.cli.options import setting_option
from mtasts.cli.render import console
from mtasts.cli.tlsrpt_config import settings_tree, store_option, store_url


@click.command("collect")
@setting_option(
    "tlsrpt.collect.socket",
    "--socket",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Unix datagram socket to create (Postfix smtp_tlsrpt_socket_name). "
    "Env MTASTS_TLSRPT_SOCKET; [tlsrpt.collect] socket.",
)
@store_option
@setting_option(
    "tlsrpt.collect.flush_interval",
    "--flush-interval",
    type=click.FloatRange(0.05, 3600),
    help="Seconds between two flushes of the counters to the store (default 5). "
    "Env MTASTS_TLSRPT_FLUSH_INTERVAL.",
)
@setting_option(
    "tlsrpt.collect.socket_mode",
    "--socket-mode",
    help="Permissions of the socket file (octal, default 0666); Postfix's smtp(8) must be "
    "able to write.",
)
@setting_option(
    "tlsrpt.collect.spool",
    "--spool",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File that keeps the counters when the store is down at shutdown; the next start "
    "replays it (default: the SQLite store's file + .spool, or "
    "/var/lib/mtasts/tlsrpt-collect.spool for PostgreSQL). Env MTASTS_TLSRPT_SPOOL.",
)
@setting_option(
    "tlsrpt.collect.max_memory",
    "--max-memory",
    type=click.IntRange(64, 1 << 20),
    help="MiB of resident memory the collector may use (default 256); past it, sessions "
    "that need a new counter are dropped (collect.counters-full) until a flush succeeds. "
    "Env MTASTS_TLSRPT_MAX_MEMORY.",
)
@click.option(
    "--postfix-log",
    metavar="FILE|-",
    help="Postfix < 3.10 (no libtlsrpt): count the TLS outcomes smtp(8) logged in FILE "
    "(- reads standard input, e.g. from tail -F) instead of the socket, under the "
    "policies of the daemon's MTA-STS cache; ends at the end of the input.",
)
@click.option(
    "--daemon",
    "daemon_url",
    envvar="MTASTS_DAEMON_URL",
    help="With --postfix-log and a memory: cache: the daemon's control URL "
    "(http://127.0.0.1:9461) to read the policies from. Env MTASTS_DAEMON_URL.",
)
def collect(postfix_log: str | None, daemon_url: str | None) -> None:
    """Count every TLS outcome libtlsrpt reports (a drop-in for tlsrpt-collectd).

    Runs until SIGTERM or SIGINT, then reads what is queued, flushes the counters and
    exits 0. If the store is down then, the counters go to the spool file (replayed by
    the next start) and the exit status is 1. With --postfix-log it reads a Postfix log
    instead, to its end (docs/tlsrpt-sending.md). [tlsrpt] keep_days is applied at
    start and then daily.
    """
    from mtasts.config import Settings
    from mtasts.runtime import run
    from mtasts.tlsrpt.collect.collector import default_spool, serve
    from mtasts.tlsrpt.settings import TlsRptSettings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    # the one line at start: what it counts, where, into which store
    logging.getLogger("mtasts.tlsrpt.collect.collector").setLevel(logging.INFO)
    tree = settings_tree()
    cfg = tree.section(TlsRptSettings)
    opts, store = cfg.collect, store_url(cfg)
    if postfix_log is not None:
        cache_url = tree.section(Settings).cache.url
        _collect_log(postfix_log, store, cache_url, daemon_url, opts.flush_interval)
        return
    if opts.socket is None:
        raise click.UsageError(
            "give --socket (or [tlsrpt.collect] socket, MTASTS_TLSRPT_SOCKET): the datagram "
            "socket Postfix's smtp_tlsrpt_socket_name names"
        )
    main = serve(
        opts.socket,
        store,
        flush_interval=opts.flush_interval,
        socket_mode=int(opts.socket_mode),
        spool=opts.spool or default_spool(store),
        max_memory=opts.max_memory << 20,
        keep_days=cfg.keep_days,
    )
    stats = run(main, uvloop=True)  # less work per socket wake-up, when installed
    rejected = sum(stats.rejected.values())
    console(stderr=True).print(
        f"mtasts tlsrpt collect: {stats.accepted} datagrams counted, {rejected} rejected, "
        f"{stats.flushes} flushes",
        highlight=False,
    )
    if stats.shutdown is not None and not stats.shutdown.complete:
        raise SystemExit(1)  # serve() said where the counters went


def _collect_log(
    source: str, store: str, cache_url: str, daemon: str | None, flush_interval: float
) -> None:
    """``collect --postfix-log``: the log's outcomes into the store, then one summary line."""
    from mtasts.runtime import run
    from mtasts.tlsrpt.collect.fromlog import count_source

    if source != "-" and not Path(source).is_file():
        raise click.BadParameter(f"{source}: no such file", param_hint="--postfix-log")
    lines = (
        open(source, encoding="utf-8", errors="replace")  # noqa: SIM115 (closed below)
        if source != "-"
        else contextlib.nullcontext(sys.stdin)
    )
    with lines as f:
        stats = run(
            count_source(
                f, store, cache_url=cache_url, daemon=daemon, flush_interval=flush_interval
            )
        )
    console(stderr=True).print(
        f"mtasts tlsrpt collect: {stats.lines} log lines read, {stats.sessions} TLS sessions "
        f"counted, {stats.flushes} flushes",
        highlight=False,
    )
