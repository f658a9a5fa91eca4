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

STORE_HELP = "sqlite:////var/lib/mtasts/tlsrpt.db (default) or postgresql://user@host/db"
DEFAULT_STORE = "sqlite:////var/lib/mtasts/tlsrpt.db"


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
@click.option("--store", default=DEFAULT_STORE, envvar="MTASTS_TLSRPT_STORE", help=STORE_HELP)
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
def collect(socket_path: Path, store: str, flush_interval: float, socket_mode: str) -> None:
    """Count every TLS outcome libtlsrpt reports (a drop-in for tlsrpt-collectd).

    Runs until SIGTERM or SIGINT, then flushes the counters and exits 0.
    """
    from mtasts.errors import MtastsError
    from mtasts.tlsrpt.collect.collector import serve

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        mode = int(socket_mode, 8)
    except ValueError:
        raise click.BadParameter(f"{socket_mode!r} is not an octal mode like 0660") from None
    try:
        stats = asyncio.run(
            serve(socket_path, store, flush_interval=flush_interval, socket_mode=mode)
        )
    except (MtastsError, OSError) as exc:
        fail(str(exc), code=1)
        return
    rejected = sum(stats.rejected.values())
    console(stderr=True).print(
        f"mtasts tlsrpt collect: {stats.accepted} datagrams counted, {rejected} rejected, "
        f"{stats.flushes} flushes",
        highlight=False,
    )


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
@click.option("--store", default=DEFAULT_STORE, envvar="MTASTS_TLSRPT_STORE", help=STORE_HELP)
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
