"""``mtasts tlsrpt``: SMTP TLS Reporting (RFC 8460) for a sending MTA and a receiving domain.

Here: ``reports`` shows the RFC 8460 reports of a day exactly as ``send`` would send
them; ``send`` replaces tlsrpt-reportd; ``status`` shows its journal. ``collect``
(replaces tlsrpt-collectd) is :mod:`mtasts.cli.tlsrpt_collect`; the receiving side's
commands are :mod:`mtasts.cli.tlsrpt_receive` and :mod:`mtasts.cli.tlsrpt_serve`. The
work is :mod:`mtasts.tlsrpt.sending`'s and the collector's; these commands parse
options, read the settings tree and render.

Exit status (docs/exit-codes.md): 0 success; 1 a report is still pending (send) or
counters went to the spool (collect); 2 usage error; 75 the store is unreachable or the
socket's address is taken; 78 a bad setting, store URL, file or directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from mtasts.cli.options import setting_option
from mtasts.cli.render import console, print_json
from mtasts.cli.tlsrpt_collect import collect
from mtasts.cli.tlsrpt_config import (
    day_of,
    reporter,
    settings_tree,
    store_option,
    store_url,
    tlsrpt_settings,
)
from mtasts.cli.tlsrpt_serve import receive

if TYPE_CHECKING:
    from mtasts.tlsrpt.aggregate import BuiltReport
    from mtasts.tlsrpt.sending import SendRun
    from mtasts.tlsrpt.status import DayStatus


@click.group("tlsrpt")
def tlsrpt() -> None:
    """SMTP TLS Reporting (RFC 8460) for a sending MTA: collect, show, send."""


def _report_options(f: Any) -> Any:
    f = setting_option(
        "tlsrpt.contact",
        "--contact",
        help="contact-info address; its domain is the TLS-Report-Submitter (RFC 8460 §5.3). "
        "Env MTASTS_TLSRPT_CONTACT; [tlsrpt] contact.",
    )(f)
    return setting_option(
        "tlsrpt.organization",
        "--organization",
        help="organization-name of the reports (RFC 8460 §4.4). "
        "Env MTASTS_TLSRPT_ORGANIZATION; [tlsrpt] organization.",
    )(f)


@tlsrpt.command("reports")
@click.option("--day", help="UTC day YYYY-MM-DD (default: yesterday).")
@store_option
@_report_options
@click.option("--json", "as_json", is_flag=True, help="A JSON list of reports in RFC wire form.")
def reports(day: str | None, as_json: bool) -> None:
    """Show the day's reports, one per policy domain, exactly as they would be sent.

    organization and contact come from [tlsrpt] of mtasts.toml (or the options).
    """
    from mtasts.runtime import run
    from mtasts.tlsrpt.aggregate import ReportSettings
    from mtasts.tlsrpt.report import report_to_json
    from mtasts.tlsrpt.sending import day_reports

    cfg = tlsrpt_settings()
    settings = ReportSettings(*reporter(cfg))
    built = run(day_reports(store_url(cfg), day_of(day), settings))
    if as_json:
        print_json([report_to_json(b.report) for b in built])
        return
    _render_reports(built)


def _render_reports(built: list[BuiltReport]) -> None:
    from rich.table import Table

    table = Table(title="TLS-RPT reports")
    for col in ("policy domain", "policy", "ok", "failed", "failures by result type"):
        table.add_column(col)
    for b in built:
        for pol in b.report.policies:
            detail: dict[str, int] = {}
            for f in pol.failure_details:
                detail[f.result_type] = detail.get(f.result_type, 0) + f.failed_session_count
            table.add_row(
                escape(pol.policy_domain),
                str(pol.policy_type),
                str(pol.total_successful_session_count),
                str(pol.total_failure_session_count),
                ", ".join(f"{k}: {v}" for k, v in sorted(detail.items())),
            )
    console().print(table)
    if not built:
        console().print("no TLS sessions were counted on that day")


@tlsrpt.command("send")
@click.option("--day", help="UTC day YYYY-MM-DD to send (default: yesterday).")
@click.option(
    "--daemon",
    is_flag=True,
    help="Run for ever: after each UTC midnight send the finished day, retrying for 24 h.",
)
@store_option
@_report_options
@setting_option(
    "tlsrpt.send.relay",
    "--relay",
    help="host:port of the SMTP relay that takes report mail (your MTA; default "
    "127.0.0.1:25). Env MTASTS_TLSRPT_RELAY; [tlsrpt.send] relay.",
)
@setting_option(
    "tlsrpt.send.relay_starttls",
    "--relay-starttls",
    is_flag=True,
    default=None,
    help="Use STARTTLS to the relay.",
)
@setting_option(
    "tlsrpt.send.sender",
    "--from",
    help="From address (default: --contact). Env MTASTS_TLSRPT_FROM; [tlsrpt.send] sender.",
)
@setting_option(
    "tlsrpt.dkim.key",
    "--dkim-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM private key that DKIM-signs report mail (RFC 8460 §3 MUST). "
    "Env MTASTS_TLSRPT_DKIM_KEY; [tlsrpt.dkim] key.",
)
@setting_option(
    "tlsrpt.dkim.selector",
    "--dkim-selector",
    help="s= (default tlsrpt). Env MTASTS_TLSRPT_DKIM_SELECTOR; [tlsrpt.dkim] selector.",
)
@setting_option(
    "tlsrpt.dkim.domain",
    "--dkim-domain",
    help="d= (default: the submitter domain). Env MTASTS_TLSRPT_DKIM_DOMAIN.",
)
@setting_option(
    "tlsrpt.send.spread",
    "--spread",
    type=click.FloatRange(0, 86400),
    default=None,
    help="Seconds over which first attempts are spread (default 0, --daemon 14400).",
)
@setting_option(
    "tlsrpt.send.settle",
    "--settle",
    type=click.IntRange(0, 86400),
    help="Seconds after a UTC midnight before the finished day is built (late flushes; "
    "default 300).",
)
@click.option(
    "--unfinished",
    is_flag=True,
    help="Send a UTC day that is not over yet (its report is journaled once, incomplete).",
)
@setting_option(
    "tlsrpt.send.retry_base",
    "--retry-base",
    type=click.IntRange(1, 86400),
    help="Seconds before the first retry (default 300); each later one waits twice as long.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print what this run did as one JSON object (not with --daemon).",
)
def send(day: str | None, daemon: bool, unfinished: bool, as_json: bool) -> None:
    """Deliver the reports (https POST and DKIM-signed mail), journaled and retried.

    Without --daemon: journal the day's reports, try every destination that is due, and
    exit 0 if nothing is left pending, 1 otherwise (run again, or run --daemon).
    """
    from mtasts.clock import wall
    from mtasts.config import Settings
    from mtasts.runtime import run
    from mtasts.tlsrpt.deliver import day_finished
    from mtasts.tlsrpt.sending import send as send_day
    from mtasts.tlsrpt.sending import send_settings
    from mtasts.tlsrpt.settings import TlsRptSettings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if as_json and daemon:
        raise click.UsageError("--json reports one run: it does not go with --daemon")
    tree = settings_tree()
    cfg = tree.section(TlsRptSettings)
    reporter(cfg)
    store = store_url(cfg)
    the_day, settle = day_of(day), cfg.send.settle
    if not daemon and not unfinished and not day_finished(the_day, wall(), settle):
        # A report is built and journaled once: built now, the rest of the day would
        # never be reported.
        raise click.BadParameter(
            f"{the_day.isoformat()} is not over yet (UTC, plus {settle} s for the "
            "collectors' last flush): send it later, or pass --unfinished to send what "
            "was counted so far (that day is then never reported again)",
            param_hint="--day",
        )
    settings = send_settings(cfg, tree.section(Settings), forever=daemon)
    done = run(send_day(store, settings, the_day, forever=daemon))
    if as_json:
        print_json(done.to_json())
    else:
        _render_run(done)
    if done.left:
        raise SystemExit(1)


def _render_run(done: SendRun) -> None:
    out = console()
    for a in done.attempts:
        mark = "[green]sent[/green]" if a.ok else f"[red]{a.status}[/red] {escape(a.error)}"
        where = escape(f"{a.domain} -> {a.destination}")  # rua: theirs
        out.print(f"{where}: {mark}", highlight=False)
    for d, domain in done.unresolved:
        out.print(
            f"{escape(domain)} ({d.isoformat()}): TLS-RPT record lookup failed; run again",
            highlight=False,
        )


@tlsrpt.command("status")
@store_option
@click.option("--day", help="Only this UTC day, YYYY-MM-DD (default: every day journaled).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (docs/json.md).")
def status(day: str | None, as_json: bool) -> None:
    """What `tlsrpt send` has pending, retrying, sent and given up, per day and destination.

    Read from the delivery journal of the store (the one `send` writes); newest day first.
    """
    from mtasts.runtime import run
    from mtasts.tlsrpt.sending import journal
    from mtasts.tlsrpt.status import journal_status, status_json

    only = day_of(day) if day is not None else None
    rows = run(journal(store_url(tlsrpt_settings())))
    days = journal_status(r for r in rows if only is None or r.day == only)
    if as_json:
        print_json(status_json(days))
        return
    _render_status(days)


def _render_status(days: list[DayStatus]) -> None:
    from rich.table import Table

    from mtasts.rfc3339 import utc_text

    out = console()
    if not days:
        out.print("nothing journaled: `tlsrpt send` has not built a report yet", highlight=False)
        return
    style = {"pending": "cyan", "retrying": "yellow", "sent": "green", "given_up": "bold red"}
    table = Table("day", "policy domain", "destination", "state", "attempts", "when", "last error")
    for d in days:
        for x in d.deliveries:
            when = x.delivered_at if x.state == "sent" else x.next_attempt_at
            table.add_row(
                d.day.isoformat(),
                escape(x.policy_domain),
                escape(x.destination),
                f"[{style[x.state]}]{x.state}[/]",
                str(x.attempts),
                utc_text(when) or "-",
                escape(x.last_error[:80]) or "-",
            )
    out.print(table)
    for d in days:
        counts = ", ".join(f"{n} {state}" for state, n in d.counts.items() if n)
        out.print(f"{d.day.isoformat()}: {d.reports} reports; {counts}", highlight=False)


# collecting, and the receiving side (issue 11): import, received, reprocess, prune
from mtasts.cli.tlsrpt_receive import register as _register_receive  # noqa: E402

tlsrpt.add_command(collect)
_register_receive(tlsrpt)
tlsrpt.add_command(receive)  # the receiving side's network intake (its own module)
