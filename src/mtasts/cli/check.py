"""``mtasts check DOMAIN...``: check a receiving domain's whole MTA-STS and TLS-RPT chain.

Exit codes follow the monitoring-plugin convention (Nagios, Icinga, Sensu): 0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN, the worst over all domains given.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from mtasts.acme.settings import AcmeSettings
from mtasts.check.finding import DomainReport, Severity, Status, worst_status
from mtasts.check.plugin import Thresholds, regrade_all, status_lines
from mtasts.check.runner import Limits, Target, check_domains
from mtasts.check.tlsinfo import now as wall_clock
from mtasts.cli.exitcodes import CommandFailed, ExitCode, colour
from mtasts.cli.options import at_least, json_option, timeout_option
from mtasts.cli.render import checks_table, print_json, toned
from mtasts.config import load_settings
from mtasts.errors import MtastsError
from mtasts.net.tls import client_context
from mtasts.settings.tree import current

_LABEL = {
    Severity.OK: "OK",
    Severity.WARNING: "WARN",
    Severity.CRITICAL: "CRIT",
    Severity.UNKNOWN: "UNKN",
}


def _table(report: DomainReport, *, problems_only: bool) -> Table | str:
    status = report.status
    if problems_only and status is Status.OK:
        return f"{report.domain}: {toned('OK', 'ok')} (nothing to fix)"
    table = checks_table(f"{report.domain}: {toned(status.name, status.name.lower())}", "finding")
    for finding in report.findings:
        if problems_only and finding.severity is Severity.OK:
            continue
        # the message quotes what the domain published (records, names, answers): text only
        message = escape(finding.message) + (f" [dim]({finding.rfc})[/dim]" if finding.rfc else "")
        label = toned(_LABEL[finding.severity], finding.severity.value)
        table.add_row(label, escape(finding.id), message)
    return table


def _target(timeout: float | None) -> Target:
    settings = load_settings()
    if settings.ca_file is not None:
        client_context(str(settings.ca_file))  # a wrong CA file: say so now, not per probe
    limits = Limits() if timeout is None else Limits(domain=timeout)
    return Target(
        nameserver=settings.nameserver,
        ca_file=settings.ca_file,
        https_port=settings.https_port,
        smtp_port=settings.smtp_port,
        limits=limits,
        # `serve policy --acme` on this host: its status for the name is shown too
        acme_state=current().section(AcmeSettings).state_dir,
    )


def progress_columns(count: int) -> tuple[ProgressColumn, ...]:
    """A spinner and the time taken; with several domains, a bar and done/total too."""
    many: tuple[ProgressColumn, ...] = (BarColumn(), MofNCompleteColumn()) if count > 1 else ()
    return (SpinnerColumn(), TextColumn("{task.description}"), *many, TimeElapsedColumn())


def _run(domains: Sequence[str], target: Target, progress: bool) -> list[DomainReport]:
    """Check ``domains``; with ``progress``, a transient bar on standard error (one domain
    too: a check can take a minute, and a silent terminal looks hung)."""
    if not progress:
        return asyncio.run(check_domains(domains, target))
    what = domains[0] if len(domains) == 1 else f"{len(domains)} domains"
    columns = progress_columns(len(domains))
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"checking {what}", total=len(domains))

        def done(report: DomainReport) -> None:
            bar.update(task, advance=1, description=f"checked {report.domain}")

        return asyncio.run(check_domains(domains, target, on_done=done))


class _BadArguments(click.UsageError):
    exit_code = int(Status.UNKNOWN)


class _CheckCommand(click.Command):
    """Bad arguments exit 3 (UNKNOWN) as monitoring plugins must; click's usual 2 would
    read as CRITICAL and page someone for a typo in the monitoring configuration."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise _BadArguments(exc.format_message(), exc.ctx) from exc


@click.command(cls=_CheckCommand)
@click.argument("domains", nargs=-1, required=True, metavar="DOMAIN...")
@json_option("Print a JSON list, one object per domain.")
@click.option(
    "--problems", "problems_only", is_flag=True, help="Show only warnings and worse (not OK)."
)
@timeout_option(
    "Seconds allowed per domain (default 90). Each MX and the policy fetch have their "
    "own shorter deadlines."
)
@click.option(
    "--nagios",
    is_flag=True,
    help="Print a monitoring-plugin status line with performance data (certificate days "
    "left of the policy host and each MX, MX count), then one line per problem.",
)
@at_least("--warning-days", 0, default=14, help="WARNING when a certificate has fewer days left.")
@at_least(
    "--critical-days",
    0,
    default=0,
    help="CRITICAL when a certificate has fewer days left (0: only once it has expired).",
)
def check(
    domains: tuple[str, ...],
    as_json: bool,
    problems_only: bool,
    timeout: float | None,
    nagios: bool,
    warning_days: int,
    critical_days: int,
) -> None:
    """Check DOMAIN's MTA-STS record, policy host, policy, every MX's STARTTLS, and TLS-RPT.

    \b
    Honours MTASTS_NAMESERVER, MTASTS_CA_FILE, MTASTS_HTTPS_PORT, MTASTS_SMTP_PORT.
    Exit codes (monitoring-plugin convention, worst over all domains):
    0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (could not be determined, or bad arguments).
    """
    if nagios and as_json:
        raise _BadArguments("--nagios and --json exclude each other")
    try:
        limits = Thresholds(warning_days, critical_days)
    except ValueError as exc:
        raise _BadArguments(str(exc)) from None
    try:
        target = _target(timeout)
    except MtastsError as exc:  # a bad setting: UNKNOWN, as for any error of a plugin
        raise CommandFailed(str(exc), ExitCode.UNKNOWN) from exc
    # progress on a terminal only, never with NO_COLOR, --json or --nagios (exit-codes.md)
    progress = not as_json and not nagios and colour(sys.stderr)
    try:
        reports = _run(domains, target, progress)
    except KeyboardInterrupt:
        raise CommandFailed("interrupted", ExitCode.UNKNOWN) from None
    now = wall_clock()
    reports = regrade_all(reports, now, limits)
    if nagios:
        for line in status_lines(reports, now, limits):
            click.echo(line)
    elif as_json:
        print_json([r.to_json() for r in reports])
    else:
        console = Console(highlight=False)
        for report in reports:
            console.print(_table(report, problems_only=problems_only))
    sys.exit(int(worst_status(r.status for r in reports)))
