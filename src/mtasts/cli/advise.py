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

from mtasts.cli.check import _BadArguments, _CheckCommand, _target
from mtasts.cli.exitcodes import CommandFailed
from mtasts.cli.options import at_least, json_option, timeout_option
from mtasts.cli.render import TONE, checks_table, console, print_json, titled, toned
from mtasts.monitor.advise import Advice, ExitCode, Verdict
from mtasts.monitor.evidence import Criteria
from mtasts.monitor.judge import Impact

_VERDICT_LEVEL = {
    Verdict.READY: "ok",
    Verdict.NOT_READY: "critical",
    Verdict.CANNOT_TELL: "unknown",
}
_IMPACT_STYLE = {
    Impact.BLOCKING: TONE["critical"],
    Impact.NOISE: "dim",
    Impact.FIXED: TONE["ok"],
    Impact.NOT_AFFECTED: "cyan",
}
_OUTCOME_LEVEL = {"pass": "ok", "fail": "critical", "unknown": "unknown"}
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
    verdict = toned(advice.verdict.value, _VERDICT_LEVEL[advice.verdict])
    mode = advice.candidate.mode.value
    out.print(f"{advice.domain}: {verdict} for mode {mode}", highlight=False)
    for reason in advice.reasons:  # reporters' names and MX hosts: text, never markup
        out.print(f"  - {escape(reason)}", highlight=False)
    d = advice.data
    out.print(
        f"\nevidence: {d.reports} report(s), {d.reporters} reporter(s), {d.sts_sessions} "
        f"session(s) under an MTA-STS policy, {d.days} day(s)",
        highlight=False,
    )
    if advice.judged:
        table = titled("reported failures under the candidate")
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
    checks = checks_table("live checks", "result")
    for c in advice.live:
        outcome = c.outcome.value
        checks.add_row(toned(outcome, _OUTCOME_LEVEL[outcome]), c.id, escape(c.message))
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
@at_least(
    "--max-age",
    1,
    maximum=31557600,
    help="The candidate's max_age in seconds (default: the published policy's).",
)
@at_least(
    "--days",
    1,
    maximum=366,
    default=14,
    help="Read the reports of this many UTC days, today included.",
)
@at_least(
    "--min-sessions",
    1,
    default=100,
    help="CANNOT TELL below this many sessions under an MTA-STS policy.",
)
@at_least("--min-days", 1, default=7, help="CANNOT TELL with reports on fewer days.")
@at_least("--min-reporters", 1, default=1, help="CANNOT TELL with fewer reporting organisations.")
@at_least(
    "--noise-sessions",
    0,
    default=1,
    help="A failure seen at most this often over the window is noise.",
)
@at_least(
    "--cert-days", 0, default=14, help="Every certificate must stay valid at least this many days."
)
@click.option(
    "--noise-reporter",
    multiple=True,
    help="An organisation whose failure reports you judge wrong (repeat).",
)
@timeout_option("Seconds allowed for the live check (default 90).")
@json_option("Print the advice as JSON.")
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
    from mtasts.monitor.advising import advise_domain
    from mtasts.monitor.evidence import with_misreporters
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
