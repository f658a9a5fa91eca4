"""``mtasts tlsrpt``: collect TLS outcomes, show the daily reports, send them.

``collect`` replaces tlsrpt-collectd (Postfix 3.10+ ``smtp_tlsrpt_socket_name``);
``reports`` shows the RFC 8460 reports of a day exactly as ``send`` would send them;
``send`` replaces tlsrpt-reportd.

Exit status: 0 success; 1 the store or a delivery failed; 2 usage error.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from mtasts.cli.render import console, fail, print_json
from mtasts.cli.tlsrpt_serve import receive

STORE_HELP = (
    "sqlite:////var/lib/mtasts/tlsrpt.db (default) or postgresql://user@host/db; "
    "else [tlsrpt] store of mtasts.toml"
)
DEFAULT_STORE = "sqlite:////var/lib/mtasts/tlsrpt.db"


def _default_store() -> str:
    """No --store, no $MTASTS_TLSRPT_STORE: mtasts.toml's [tlsrpt] store, else the default
    (the daemon counts policy failures into the same setting)."""
    from mtasts.errors import ConfigError
    from mtasts.tlsrpt.storeconf import configured_store

    try:
        return configured_store() or DEFAULT_STORE
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


DEFAULT_SPOOL = "/var/lib/mtasts/tlsrpt-collect.spool"


def _yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def _day(value: str | None) -> date:
    if value is None:
        return _yesterday()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day: write YYYY-MM-DD") from None


@click.group("tlsrpt")
def tlsrpt() -> None:
    """SMTP TLS Reporting (RFC 8460) for a sending MTA: collect, show, send."""


@tlsrpt.command("collect")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    envvar="MTASTS_TLSRPT_SOCKET",
    help="Unix datagram socket to create (Postfix smtp_tlsrpt_socket_name).",
)
@click.option("--store", default=_default_store, envvar="MTASTS_TLSRPT_STORE", help=STORE_HELP)
@click.option(
    "--flush-interval",
    type=click.FloatRange(0.05, 3600),
    default=5.0,
    show_default=True,
    envvar="MTASTS_TLSRPT_FLUSH_INTERVAL",
    help="Seconds between two flushes of the counters to the store.",
)
@click.option(
    "--socket-mode",
    default="0666",
    show_default=True,
    help="Permissions of the socket file (octal); Postfix's smtp(8) must be able to write.",
)
@click.option(
    "--spool",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="MTASTS_TLSRPT_SPOOL",
    help="File that keeps the counters when the store is down at shutdown; the next start "
    "replays it (default: the SQLite store's file + .spool, or "
    f"{DEFAULT_SPOOL} for PostgreSQL).",
)
@click.option(
    "--max-memory",
    type=click.IntRange(64, 1 << 20),
    default=256,
    show_default=True,
    envvar="MTASTS_TLSRPT_MAX_MEMORY",
    help="MiB of resident memory the collector may use; past it, sessions that need a new "
    "counter are dropped (collect.counters-full) until a flush succeeds.",
)
def collect(
    socket_path: Path,
    store: str,
    flush_interval: float,
    socket_mode: str,
    spool: Path | None,
    max_memory: int,
) -> None:
    """Count every TLS outcome libtlsrpt reports (a drop-in for tlsrpt-collectd).

    Runs until SIGTERM or SIGINT, then reads what is queued, flushes the counters and
    exits 0. If the store is down then, the counters go to the spool file (replayed by
    the next start) and the exit status is 1.
    """
    from mtasts.errors import MtastsError
    from mtasts.store.engine import parse_store_url
    from mtasts.tlsrpt.collect.collector import serve

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        mode = int(socket_mode, 8)
    except ValueError:
        raise click.BadParameter(f"{socket_mode!r} is not an octal mode like 0660") from None
    try:
        kind, target = parse_store_url(store)
    except MtastsError as exc:
        fail(str(exc), code=1)
        return
    if spool is None:
        spool = Path(f"{target}.spool") if kind == "sqlite" and target != ":memory:" else None
        spool = spool or Path(DEFAULT_SPOOL)
    main = serve(
        socket_path,
        store,
        flush_interval=flush_interval,
        socket_mode=mode,
        spool=spool,
        max_memory=max_memory << 20,
    )
    try:
        try:  # uvloop (the [uvloop] extra) when installed: less work per socket wake-up
            import uvloop
        except ImportError:
            stats = asyncio.run(main)
        else:
            stats = uvloop.run(main)
    except (MtastsError, OSError) as exc:
        fail(str(exc), code=1)
        return
    rejected = sum(stats.rejected.values())
    console(stderr=True).print(
        f"mtasts tlsrpt collect: {stats.accepted} datagrams counted, {rejected} rejected, "
        f"{stats.flushes} flushes",
        highlight=False,
    )
    left = stats.shutdown
    if left is not None and not left.complete:
        if left.spool is not None:
            logging.getLogger("mtasts.tlsrpt.collect").error(
                "the TLS-RPT store was down at shutdown (%s): %d sessions in %d counters "
                "written to the spool %s; the next start replays them",
                left.error,
                left.sessions,
                left.counters,
                left.spool,
            )
        else:
            logging.getLogger("mtasts.tlsrpt.collect").error(
                "the TLS-RPT store was down at shutdown (%s): %d sessions in %d counters are LOST",
                left.error,
                left.sessions,
                left.counters,
            )
        raise SystemExit(1)


def _reports_json(day: date, store: str, org: str, contact: str) -> list[dict[str, Any]]:
    from mtasts.store.tlsrpt import TlsRptStore
    from mtasts.tlsrpt.aggregate import ReportSettings, build_reports
    from mtasts.tlsrpt.report import report_to_json

    async def load() -> Any:
        s = TlsRptStore.open(store)
        try:
            await s.create()
            return await s.load_day(day)
        finally:
            await s.close()

    counters = asyncio.run(load())
    settings = ReportSettings(organization_name=org, contact_info=contact)
    return [report_to_json(b.report) for b in build_reports(counters, day, settings)]


@tlsrpt.command("reports")
@click.option("--day", help="UTC day YYYY-MM-DD (default: yesterday).")
@click.option("--store", default=_default_store, envvar="MTASTS_TLSRPT_STORE", help=STORE_HELP)
@click.option(
    "--organization",
    envvar="MTASTS_TLSRPT_ORGANIZATION",
    required=True,
    help="organization-name of the reports (RFC 8460 §4.4).",
)
@click.option(
    "--contact",
    envvar="MTASTS_TLSRPT_CONTACT",
    required=True,
    help="contact-info address; its domain is the TLS-Report-Submitter (RFC 8460 §5.3).",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of reports in RFC wire form.")
def reports(day: str | None, store: str, organization: str, contact: str, as_json: bool) -> None:
    """Show the day's reports, one per policy domain, exactly as they would be sent."""
    from mtasts.errors import MtastsError

    try:
        out = _reports_json(_day(day), store, organization, contact)
    except (MtastsError, OSError) as exc:
        fail(str(exc), code=1)
        return
    if as_json:
        print_json(out)
        return
    _render(out)


def _render(out: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(title="TLS-RPT reports")
    for col in ("policy domain", "policy", "ok", "failed", "failures by result type"):
        table.add_column(col)
    for rep in out:
        for pol in rep["policies"]:
            detail: dict[str, int] = {}
            for f in pol.get("failure-details", []):
                detail[f["result-type"]] = detail.get(f["result-type"], 0) + int(
                    f["failed-session-count"]
                )
            table.add_row(
                pol["policy"].get("policy-domain", ""),
                pol["policy"]["policy-type"],
                str(pol["summary"]["total-successful-session-count"]),
                str(pol["summary"]["total-failure-session-count"]),
                ", ".join(f"{k}: {v}" for k, v in sorted(detail.items())),
            )
    console().print(table)
    if not out:
        console().print("no TLS sessions were counted on that day")


def _report_options(f: Any) -> Any:
    f = click.option(
        "--contact",
        envvar="MTASTS_TLSRPT_CONTACT",
        required=True,
        help="contact-info address; its domain is the TLS-Report-Submitter (RFC 8460 §5.3).",
    )(f)
    return click.option(
        "--organization",
        envvar="MTASTS_TLSRPT_ORGANIZATION",
        required=True,
        help="organization-name of the reports (RFC 8460 §4.4).",
    )(f)


@tlsrpt.command("send")
@click.option("--day", help="UTC day YYYY-MM-DD to send (default: yesterday).")
@click.option(
    "--daemon",
    is_flag=True,
    help="Run for ever: after each UTC midnight send the finished day, retrying for 24 h.",
)
@click.option("--store", default=_default_store, envvar="MTASTS_TLSRPT_STORE", help=STORE_HELP)
@_report_options
@click.option(
    "--relay",
    default="127.0.0.1:25",
    show_default=True,
    envvar="MTASTS_TLSRPT_RELAY",
    help="host:port of the SMTP relay that takes report mail (your MTA).",
)
@click.option("--relay-starttls", is_flag=True, help="Use STARTTLS to the relay.")
@click.option(
    "--from", "sender", envvar="MTASTS_TLSRPT_FROM", help="From address (default: --contact)."
)
@click.option(
    "--dkim-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="MTASTS_TLSRPT_DKIM_KEY",
    help="PEM private key that DKIM-signs report mail (RFC 8460 §3 MUST).",
)
@click.option(
    "--dkim-selector", default="tlsrpt", show_default=True, envvar="MTASTS_TLSRPT_DKIM_SELECTOR"
)
@click.option(
    "--dkim-domain", envvar="MTASTS_TLSRPT_DKIM_DOMAIN", help="d= (default: the submitter domain)."
)
@click.option(
    "--spread",
    type=click.FloatRange(0, 86400),
    default=None,
    help="Seconds over which first attempts are spread (default 0, --daemon 14400).",
)
@click.option(
    "--settle",
    type=click.IntRange(0, 86400),
    default=300,
    show_default=True,
    help="Seconds after a UTC midnight before the finished day is built (late flushes).",
)
@click.option(
    "--unfinished",
    is_flag=True,
    help="Send a UTC day that is not over yet (its report is journaled once, incomplete).",
)
@click.option(
    "--retry-base",
    type=click.IntRange(1, 86400),
    default=300,
    show_default=True,
    help="Seconds before the first retry; each later one waits twice as long.",
)
def send(
    day: str | None,
    daemon: bool,
    store: str,
    organization: str,
    contact: str,
    relay: str,
    relay_starttls: bool,
    sender: str | None,
    dkim_key: Path | None,
    dkim_selector: str,
    dkim_domain: str | None,
    spread: float | None,
    settle: int,
    unfinished: bool,
    retry_base: int,
) -> None:
    """Deliver the reports (https POST and DKIM-signed mail), journaled and retried.

    Without --daemon: journal the day's reports, try every destination that is due, and
    exit 0 if nothing is left pending, 1 otherwise (run again, or run --daemon).
    """
    from mtasts.config import load_settings, parse_hostport
    from mtasts.errors import MtastsError
    from mtasts.tlsrpt.aggregate import ReportSettings
    from mtasts.tlsrpt.deliver import DkimKey, SendSettings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        cfg = load_settings()
        report = ReportSettings(organization, contact)
        key = None
        if dkim_key is not None:
            key = DkimKey(dkim_domain or report.submitter, dkim_selector, dkim_key.read_bytes())
        settings = SendSettings(
            report=report,
            relay=parse_hostport(relay, default_port=25, what="--relay"),
            relay_starttls=relay_starttls,
            sender_address=sender or "",
            dkim=key,
            ca_file=str(cfg.ca_file) if cfg.ca_file else None,
            nameserver=cfg.nameserver,
            spread=spread if spread is not None else (14400.0 if daemon else 0.0),
            first_retry=retry_base,
            settle=settle,
        )
        pending = asyncio.run(_send(store, settings, _day(day), daemon, unfinished))
    except (MtastsError, OSError) as exc:
        fail(str(exc), code=1)
        return
    if pending:
        raise SystemExit(1)


async def _send(
    store_url: str, settings: Any, day: date, daemon: bool, unfinished: bool = False
) -> int:
    import time

    from mtasts.errors import TlsRptError
    from mtasts.store.tlsrpt import TlsRptStore
    from mtasts.tlsrpt.deliver import Sender

    now = int(time.time())
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    if not daemon and not unfinished and now < end + settings.settle:
        # A report is built and journaled once: built now, the rest of the day would
        # never be reported.
        raise TlsRptError(
            f"{day.isoformat()} is not over yet (UTC, plus {settings.settle} s for the "
            "collectors' last flush): send it later, or pass --unfinished to send what "
            "was counted so far (that day is then never reported again)",
            code="send.unfinished-day",
        )
    store = TlsRptStore.open(store_url)
    await store.create()
    sender = Sender(store, settings)
    try:
        if daemon:
            await sender.run_forever()
        attempts = await sender.send_days([day], now)
        out = console()
        for a in attempts:
            mark = "[green]sent[/green]" if a.ok else f"[red]{a.status}[/red] {a.error}"
            out.print(f"{a.domain} -> {a.destination}: {mark}", highlight=False)
        for d, domain in sorted(sender.unresolved):
            out.print(f"{domain} ({d}): TLS-RPT record lookup failed; run again", highlight=False)
        pending = sum(1 for d in await store.deliveries() if d.status == "pending")
        return pending + len(sender.unresolved)
    finally:
        await sender.aclose()
        await store.close()


# receiving (issue 11): import, received, reprocess, prune
from mtasts.cli.tlsrpt_receive import register as _register_receive  # noqa: E402

_register_receive(tlsrpt)
tlsrpt.add_command(receive)  # the receiving side's network intake (its own module)
