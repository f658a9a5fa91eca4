"""``mtasts tlsrpt import | received | reprocess | release | prune``: the receiving side's batch
commands (the long-running ``tlsrpt receive`` service lives beside them).

Settings: the ``[receive]`` table of mtasts.toml (mtasts.tlsrpt.receive.settings), then
the options. DNS for DKIM keys through MTASTS_NAMESERVER / ``nameserver``.

Exit status (docs/exit-codes.md): 0 success; 2 usage error (a source that does not
exist); 75 the store is unreachable; 78 a bad setting or store URL.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import click

from mtasts.cli.options import setting_option
from mtasts.cli.render import console, print_json
from mtasts.cli.store import run_on_store, store_option
from mtasts.clock import utc_today


def _day(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day: write YYYY-MM-DD") from None


def _settings() -> Any:
    """[receive] of mtasts.toml < ``MTASTS_RECEIVE_*`` < the command's options, with the
    resolver's nameserver and DNS timeout (for DKIM keys)."""
    from mtasts.cli.configured import settings_tree
    from mtasts.cli.options import given
    from mtasts.config import Settings
    from mtasts.tlsrpt.receive.settings import ReceiveSection

    tree = settings_tree(given())
    base = tree.section(Settings)
    settings = tree.section(ReceiveSection).decide
    return replace(settings, nameserver=base.nameserver, dns_timeout=base.timeouts.dns)


@click.command("import")
@store_option
@click.argument("sources", nargs=-1, required=True)
@setting_option(
    "receive.owned_domains",
    "--owned-domain",
    multiple=True,
    help="A domain of ours (repeat); reports about none of them are refused or quarantined.",
)
@setting_option(
    "receive.other_domains",
    "--other-domains",
    type=click.Choice(["refuse", "quarantine", "accept"]),
    help="What to do with reports about no domain of ours ([receive] other_domains).",
)
@setting_option(
    "receive.require_dkim",
    "--require-dkim/--no-require-dkim",
    default=None,
    help="Quarantine report mail without an aligned DKIM pass (RFC 8460 §3).",
)
@setting_option(
    "receive.verify_dkim",
    "--verify-dkim/--no-verify-dkim",
    default=None,
    help="Look DKIM keys up in DNS (default on); off: the verdict is 'none'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def import_(
    store: str,
    sources: tuple[str, ...],
    as_json: bool,
) -> None:
    """Import reports from files (.json, .json.gz, .eml), directories, Maildir folders,
    mbox files (and imaps://user@host/FOLDER). Re-running it adds nothing."""
    from mtasts.tlsrpt.receive.importer import import_sources
    from mtasts.tlsrpt.receive.intake import Receiver

    settings = _settings()

    for source in sources:  # a file or directory that is not there: a usage error, now
        if "://" not in source and not Path(source).exists():
            raise click.BadParameter(f"{source}: no such file or directory", param_hint="SOURCES")
    if any(s.lower().startswith("imaps://") for s in sources):
        try:  # registers the imaps:// scheme (the [imap] extra: aioimaplib)
            import mtasts.tlsrpt.receive.imap  # noqa: F401
        except ImportError:
            from mtasts.errors import MissingDependency

            raise MissingDependency(
                "importing from imaps://", "imap", module="aioimaplib"
            ) from None

    async def run() -> Any:
        receiver = await Receiver.open(store, settings, batch=True)
        try:
            return await import_sources(receiver, sources)
        finally:
            await receiver.close()

    result = run_on_store(run)
    if as_json:
        print_json(result.to_json())
        return
    out = console()
    counts = ", ".join(f"{n} {what}" for what, n in sorted(result.counts.items())) or "nothing"
    out.print(f"imported: {counts}", highlight=False)
    for source, code, reason in result.refused:
        out.print(f"  refused {source}: {code}: {reason}", highlight=False)


@click.command("received")
@store_option
@click.option("--domain", help="One policy domain (default: all).")
@click.option("--since", help="First UTC day, YYYY-MM-DD (default: 30 days ago).")
@click.option("--until", help="Last UTC day, YYYY-MM-DD (default: today).")
@click.option("--reports", "list_reports", is_flag=True, help="List the reports themselves.")
@click.option("--quarantined", is_flag=True, help="With --reports: the quarantined ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def received(
    store: str,
    domain: str | None,
    since: str | None,
    until: str | None,
    list_reports: bool,
    quarantined: bool,
    as_json: bool,
) -> None:
    """What the received reports say, per policy domain and UTC day."""
    from mtasts.tlsrpt.receive.query import received as days_of
    from mtasts.tlsrpt.receive.query import received_reports

    today = utc_today()
    first = _day(since) or date.fromordinal(today.toordinal() - 30)
    last = _day(until) or today
    if list_reports or quarantined:
        reps = run_on_store(
            lambda: received_reports(
                store, domain=domain, since=first, until=last, quarantined=quarantined
            )
        )
        if as_json:
            print_json([r.to_json() for r in reps])
        else:
            from mtasts.cli.tlsrpt_receive_render import render_reports

            render_reports(reps)
        return
    days = run_on_store(lambda: days_of(store, domain=domain, since=first, until=last))
    if as_json:
        print_json([d.to_json() for d in days])
    else:
        from mtasts.cli.tlsrpt_receive_render import render_days

        render_days(days)


@click.command("reprocess")
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def reprocess(store: str, as_json: bool) -> None:
    """Read every archived input again (after a reader fix) and rebuild the reports.

    Arrivals keep their time, channel and recorded DKIM verdict; runs in one
    transaction (the receive service waits, and its senders retry)."""
    from mtasts.tlsrpt.receive.intake import Receiver

    settings = _settings()

    async def run() -> dict[str, int]:
        receiver = await Receiver.open(store, settings, batch=True)
        try:
            return await receiver.reprocess()
        finally:
            await receiver.close()

    counts = run_on_store(run)
    if as_json:
        print_json(counts)
    else:
        text = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing archived"
        console().print(f"reprocessed: {text}", highlight=False)


@click.command("release")
@store_option
@click.argument("ids", nargs=-1, required=True, type=click.IntRange(1))
@click.option("--note", help="Why (kept with the release).")
@click.option("--json", "as_json", is_flag=True, help="Print each id's outcome as JSON.")
def release(store: str, ids: tuple[int, ...], note: str | None, as_json: bool) -> None:
    """Store quarantined reports as if they had passed (the ids `tlsrpt received
    --quarantined` lists): they count from now on, and a reprocess keeps the release.

    Exit status 0 when every id is now stored, 1 when one is no report."""
    from mtasts.tlsrpt.receive.intake import Receiver

    settings = _settings()

    async def run() -> dict[int, str]:
        receiver = await Receiver.open(store, settings, batch=True)
        try:
            return await receiver.release(ids, note)
        finally:
            await receiver.close()

    outcomes = run_on_store(run)
    if as_json:
        print_json({str(pk): what for pk, what in outcomes.items()})
    else:
        out = console()
        for pk, what in outcomes.items():
            text = {
                "released": "released: stored and counted from now on",
                "not-quarantined": "not quarantined (stored already): nothing to do",
                "no-such-report": "no such report",
            }[what]
            out.print(f"{pk}: {text}", highlight=False)
    if "no-such-report" in outcomes.values():
        raise SystemExit(1)


@click.command("prune")
@store_option
@setting_option(
    "receive.keep_days",
    "--keep-days",
    type=click.IntRange(1),
    help="Keep this many days of reports ([receive] keep_days).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def prune(store: str, as_json: bool) -> None:
    """Delete reports older than keep_days, their arrivals and raw bytes."""
    from mtasts.tlsrpt.receive.intake import Receiver

    settings = _settings()
    if settings.keep_days is None:
        raise click.UsageError("no retention set: give --keep-days or [receive] keep_days")

    async def run() -> dict[str, int]:
        receiver = await Receiver.open(store, settings, batch=True)
        try:
            return await receiver.prune(utc_today())
        finally:
            await receiver.close()

    counts = run_on_store(run)
    if as_json:
        print_json(counts)
    else:
        text = ", ".join(f"{n} {k}" for k, n in counts.items())
        console().print(f"deleted: {text}", highlight=False)


def register(group: click.Group) -> None:
    """Add the receiving commands to ``mtasts tlsrpt``."""
    for command in (import_, received, reprocess, release, prune):
        group.add_command(command)
