"""``mtasts advise DOMAIN``: is it safe to switch DOMAIN to enforce (or to another candidate
policy)? Judged from the TLS-RPT reports received over the last days and a live check.

Exit codes (monitoring-plugin convention): 0 READY, 1 READY with notes to read first,
2 NOT READY, 3 CANNOT TELL (too little evidence, a live check that could not run, bad
arguments, a store or configuration error).
"""

from __future__ import annotations

import asyncio
import sys

import click
from rich.markup import escape
from rich.table import Table

from mtasts.cli.check import _BadArguments, _CheckCommand, _target
from mtasts.cli.exitcodes import CommandFailed
from mtasts.cli.render import console, print_json
from mtasts.monitor.advise import Advice, Criteria, ExitCode, Impact, Verdict

_VERDICT_STYLE = {
    Verdict.READY: "bold green",
    Verdict.NOT_READY: "bold red",
    Verdict.CANNOT_TELL: "magenta",
}
_IMPACT_STYLE = {
    Impact.BLOCKING: "bold red",
    Impact.NOISE: "dim",
    Impact.FIXED: "green",
    Impact.NOT_AFFECTED: "cyan",
}
_OUTCOME_STYLE = {"pass": "green", "fail": "bold red", "unknown": "magenta"}
MAX_ROWS = 50  # failure groups in the table (blocking ones sort first); --json has all


def _default_store() -> str:
    from mtasts.errors import ConfigError
    from mtasts.tlsrpt.storeconf import DEFAULT_STORE, configured_store

    try:
        return configured_store() or DEFAULT_STORE
    except ConfigError as exc:
        raise _BadArguments(str(exc)) from None


def render(advice: Advice) -> None:
    out = console()
    style = _VERDICT_STYLE[advice.verdict]
    mode = advice.candidate.mode.value
    out.print(
        f"{advice.domain}: [{style}]{advice.verdict.value}[/] for mode {mode}", highlight=False
    )
    for reason in advice.reasons:  # reporters' names and MX hosts: text, never markup
        out.print(f"  - {escape(reason)}", highlight=False)
    d = advice.data
    out.print(
        f"\nevidence: {d.reports} report(s), {d.reporters} reporter(s), {d.sts_sessions} "
        f"session(s) under an MTA-STS policy, {d.days} day(s)",
        highlight=False,
    )
    if advice.judged:
        table = Table(title="reported failures under the candidate", title_justify="left")
        for col in ("impact", "reporter", "result", "MX", "sessions", "days", "why"):
            table.add_column(col, overflow="fold")
        ordered = sorted(
            advice.judged, key=lambda j: (j.impact is not Impact.BLOCKING, -j.failure.sessions)
        )
        for j in ordered[:MAX_ROWS]:
            f = j.failure
            table.add_row(
                f"[{_IMPACT_STYLE[j.impact]}]{j.impact.value}[/]",
                escape(f.organization),
                escape(f.result_type),
                escape(f.mx_host or "-"),
                str(f.sessions),
                f.first_day if f.first_day == f.last_day else f"{f.first_day}..{f.last_day}",
                escape(j.why),
            )
        out.print(table)
        if len(advice.judged) > MAX_ROWS:
            more = len(advice.judged) - MAX_ROWS
            out.print(f"... and {more} more failure group(s): see --json", highlight=False)
    checks = Table(title="live checks", title_justify="left")
    checks.add_column("")
    checks.add_column("check", style="cyan")
    checks.add_column("result", overflow="fold")
    for c in advice.live:
        checks.add_row(
            f"[{_OUTCOME_STYLE[c.outcome.value]}]{c.outcome.value}[/]", c.id, escape(c.message)
        )
    out.print(checks)
    out.print("\nsteps:", highlight=False)
    for i, step in enumerate(advice.steps, 1):
        out.print(f"{i}. {escape(step)}", highlight=False)
    out.print(f"\nexposure: {escape(advice.exposure)}", highlight=False)


@click.command(cls=_CheckCommand)
@click.argument("domain")
@click.option(
    "--store",
    default=_default_store,
    envvar="MTASTS_TLSRPT_STORE",
    help="The store of received reports (default: [tlsrpt] store, else "
    "sqlite:////var/lib/mtasts/tlsrpt.db).",
)
@click.option(
    "--mode",
    type=click.Choice(["enforce", "testing", "none"]),
    default=None,
    help="The candidate's mode (default enforce).",
)
@click.option(
    "--mx",
    "mx",
    multiple=True,
    help="The candidate's mx patterns (repeat; default: the published policy's).",
)
@click.option(
    "--max-age",
    type=click.IntRange(1, 31557600),
    default=None,
    help="The candidate's max_age in seconds (default: the published policy's).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=14,
    show_default=True,
    help="Read the reports of this many UTC days, today included.",
)
@click.option(
    "--min-sessions",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="CANNOT TELL below this many sessions under an MTA-STS policy.",
)
@click.option(
    "--min-days",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="CANNOT TELL with reports on fewer days.",
)
@click.option(
    "--min-reporters",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="CANNOT TELL with fewer reporting organisations.",
)
@click.option(
    "--noise-sessions",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="A failure seen at most this often over the window is noise.",
)
@click.option(
    "--cert-days",
    type=click.IntRange(min=0),
    default=14,
    show_default=True,
    help="Every certificate must stay valid at least this many days.",
)
@click.option(
    "--noise-reporter",
    multiple=True,
    help="An organisation whose failure reports you judge wrong (repeat).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    default=None,
    help="Seconds allowed for the live check (default 90).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the advice as JSON.")
def advise(
    domain: str,
    store: str,
    mode: str | None,
    mx: tuple[str, ...],
    max_age: int | None,
    days: int,
    min_sessions: int,
    min_days: int,
    min_reporters: int,
    noise_sessions: int,
    cert_days: int,
    noise_reporter: tuple[str, ...],
    timeout: float | None,
    as_json: bool,
) -> None:
    """Say whether DOMAIN can switch to enforce: READY, NOT READY or CANNOT TELL.

    \b
    Replays the TLS-RPT reports of the last --days against the candidate policy (the
    published one with mode enforce, or --mode/--mx/--max-age), separates failures that
    would block mail from noise, runs the live checks that must pass first, and prints
    the steps: the policy text, the new id and how long a mistake would last.
    Exit codes: 0 READY, 1 READY with notes, 2 NOT READY, 3 CANNOT TELL or error.
    """
    from mtasts.errors import MtastsError
    from mtasts.monitor.advise import with_misreporters
    from mtasts.monitor.advising import advise_domain
    from mtasts.sts.policy import Mode

    try:
        criteria = with_misreporters(
            Criteria(
                days=days,
                min_sessions=min_sessions,
                min_days=min_days,
                min_reporters=min_reporters,
                noise_sessions=noise_sessions,
                cert_days=cert_days,
            ),
            noise_reporter,
        )
    except ValueError as exc:
        raise _BadArguments(str(exc)) from None
    code = int(ExitCode.CANNOT_TELL)
    try:
        target = _target(timeout)
        result = asyncio.run(
            advise_domain(
                store,
                domain,
                mode=Mode(mode) if mode else None,
                mx=mx,
                max_age=max_age,
                criteria=criteria,
                target=target,
            )
        )
    except MtastsError as exc:  # one line (docs/exit-codes.md), CANNOT TELL as a plugin's
        raise CommandFailed(str(exc), code) from exc
    except OSError as exc:
        raise CommandFailed(f"the store failed: {exc}", code) from exc
    except Exception as exc:  # a database driver's own error (locked, server gone)
        raise CommandFailed(f"the store failed: {type(exc).__name__}: {exc}", code) from exc
    if as_json:
        print_json(result.to_json())
    else:
        render(result)
    sys.exit(int(result.exit_code))
