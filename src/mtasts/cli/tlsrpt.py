"""``mtasts tlsrpt``: collect TLS outcomes, show the daily reports, send them.

``collect`` replaces tlsrpt-collectd (Postfix 3.10+ ``smtp_tlsrpt_socket_name``);
``reports`` shows the RFC 8460 reports of a day exactly as ``send`` would send them;
``send`` replaces tlsrpt-reportd.

Exit status (docs/exit-codes.md): 0 success; 1 a report is still pending (send) or
counters went to the spool (collect); 2 usage error; 75 the store is unreachable or the
socket's address is taken; 78 a bad setting, store URL, file or directory.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from mtasts.cli.render import console, print_json
from mtasts.cli.tlsrpt_serve import receive

if TYPE_CHECKING:
    from mtasts.tlsrpt.settings import TlsRptSettings

STORE_HELP = (
    "sqlite:////var/lib/mtasts/tlsrpt.db (default) or postgresql://user@host/db. "
    "Env MTASTS_TLSRPT_STORE; [tlsrpt] store"
)
DEFAULT_STORE = "sqlite:////var/lib/mtasts/tlsrpt.db"
DEFAULT_SPOOL = "/var/lib/mtasts/tlsrpt-collect.spool"


def _tlsrpt(options: dict[str, tuple[str, Any]]) -> TlsRptSettings:
    """``[tlsrpt]`` of mtasts.toml < environment < ``options`` (keys below tlsrpt.)."""
    from mtasts.cli.configured import settings_tree
    from mtasts.tlsrpt.settings import TlsRptSettings

    tree = settings_tree({f"tlsrpt.{key}": given for key, given in options.items()})
    return tree.section(TlsRptSettings)


def _store(cfg: TlsRptSettings) -> str:
    """The configured store (the daemon counts policy failures into the same one)."""
    from mtasts.store.engine import parse_store_url

    url = cfg.store or DEFAULT_STORE
    parse_store_url(url)  # a ConfigError: exit 78, one line (docs/exit-codes.md)
    return url


def _reporter(cfg: TlsRptSettings) -> tuple[str, str]:
    """organization and contact, which every report names (RFC 8460 §4.4)."""
    missing = [
        f"--{key} (or [tlsrpt] {key}, MTASTS_TLSRPT_{key.upper()})"
        for key in ("organization", "contact")
        if not getattr(cfg, key)
    ]
    if missing:
        raise click.UsageError("reports need " + " and ".join(missing))
    return cfg.organization, cfg.contact


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
    help="Unix datagram socket to create (Postfix smtp_tlsrpt_socket_name). "
    "Env MTASTS_TLSRPT_SOCKET; [tlsrpt.collect] socket.",
)
@click.option("--store", help=STORE_HELP)
@click.option(
    "--flush-interval",
    type=click.FloatRange(0.05, 3600),
    help="Seconds between two flushes of the counters to the store (default 5). "
    "Env MTASTS_TLSRPT_FLUSH_INTERVAL.",
)
@click.option(
    "--socket-mode",
    help="Permissions of the socket file (octal, default 0666); Postfix's smtp(8) must be "
    "able to write.",
)
@click.option(
    "--spool",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File that keeps the counters when the store is down at shutdown; the next start "
    "replays it (default: the SQLite store's file + .spool, or "
    f"{DEFAULT_SPOOL} for PostgreSQL). Env MTASTS_TLSRPT_SPOOL.",
)
@click.option(
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
def collect(
    socket_path: Path | None,
    store: str | None,
    flush_interval: float | None,
    socket_mode: str | None,
    spool: Path | None,
    max_memory: int | None,
    postfix_log: str | None,
    daemon_url: str | None,
) -> None:
    """Count every TLS outcome libtlsrpt reports (a drop-in for tlsrpt-collectd).

    Runs until SIGTERM or SIGINT, then reads what is queued, flushes the counters and
    exits 0. If the store is down then, the counters go to the spool file (replayed by
    the next start) and the exit status is 1. With --postfix-log it reads a Postfix log
    instead, to its end (docs/tlsrpt-sending.md).
    """
    from mtasts.runtime import run
    from mtasts.store.engine import parse_store_url
    from mtasts.tlsrpt.collect.collector import serve

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    # the one line at start: what it counts, where, into which store
    logging.getLogger("mtasts.tlsrpt.collect.collector").setLevel(logging.INFO)
    cfg = _tlsrpt(
        {
            "store": ("--store", store),
            "collect.socket": ("--socket", socket_path),
            "collect.flush_interval": ("--flush-interval", flush_interval),
            "collect.socket_mode": ("--socket-mode", socket_mode),
            "collect.spool": ("--spool", spool),
            "collect.max_memory": ("--max-memory", max_memory),
        }
    )
    opts = cfg.collect
    if postfix_log is not None:
        _collect_log(postfix_log, _store(cfg), opts.flush_interval, daemon_url)
        return
    if opts.socket is None:
        raise click.UsageError(
            "give --socket (or [tlsrpt.collect] socket, MTASTS_TLSRPT_SOCKET): the datagram "
            "socket Postfix's smtp_tlsrpt_socket_name names"
        )
    store = _store(cfg)
    spool = opts.spool
    kind, target = parse_store_url(store)
    if spool is None:
        spool = Path(f"{target}.spool") if kind == "sqlite" and target != ":memory:" else None
        spool = spool or Path(DEFAULT_SPOOL)
    main = serve(
        opts.socket,
        store,
        flush_interval=opts.flush_interval,
        socket_mode=int(opts.socket_mode),
        spool=spool,
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


def _collect_log(source: str, store_url: str, flush_interval: float, daemon: str | None) -> None:
    """``collect --postfix-log``: the log's outcomes into the store, then one summary line."""
    import sys

    from mtasts.tlsrpt.collect.fromlog import CachedPolicies, count_log

    if source != "-" and not Path(source).is_file():
        raise click.BadParameter(f"{source}: no such file", param_hint="--postfix-log")

    async def run(lines: Any) -> Any:
        from mtasts.tlsrpt.store import TlsRptStore

        lookup, close = await _policy_lookup(daemon)
        store = TlsRptStore.open(store_url)
        try:
            await store.create()
            return await count_log(
                lines, store, CachedPolicies(lookup), flush_interval=flush_interval
            )
        finally:
            await store.close()
            await close()

    if source == "-":
        stats = asyncio.run(run(sys.stdin))
    else:
        with open(source, encoding="utf-8", errors="replace") as lines:
            stats = asyncio.run(run(lines))
    console(stderr=True).print(
        f"mtasts tlsrpt collect: {stats.lines} log lines read, {stats.sessions} TLS sessions "
        f"counted, {stats.flushes} flushes",
        highlight=False,
    )


async def _policy_lookup(daemon: str | None) -> tuple[Any, Any]:
    """(domain -> cache entry, close): the daemon's cache, directly or through the daemon."""
    from mtasts.names import normalize_domain
    from mtasts.sts.cache import open_cache

    if daemon:
        import httpx

        from mtasts.errors import ServiceUnavailable
        from mtasts.sts.cache.base import entry_from_json

        client = httpx.AsyncClient(base_url=daemon.rstrip("/"), timeout=30)

        async def via_daemon(domain: str) -> Any:
            try:
                answer = await client.get(f"/cache/{normalize_domain(domain)}")
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(
                    f"cannot reach the daemon at {daemon}: {exc}: is it running, with this "
                    "[daemon] metrics address?",
                    code="daemon.unreachable",
                ) from exc
            return entry_from_json(answer.json()) if answer.status_code == 200 else None

        return via_daemon, client.aclose
    from mtasts.config import load_settings
    from mtasts.sts.cache import require_shared

    url = load_settings().cache.url
    require_shared(url)
    cache = await open_cache(url)
    return cache.get, cache.aclose


def _reports_json(day: date, store: str, org: str, contact: str) -> list[dict[str, Any]]:
    from mtasts.tlsrpt.aggregate import ReportSettings, build_reports
    from mtasts.tlsrpt.report import report_to_json
    from mtasts.tlsrpt.store import TlsRptStore

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


def _report_options(f: Any) -> Any:
    f = click.option(
        "--contact",
        help="contact-info address; its domain is the TLS-Report-Submitter (RFC 8460 §5.3). "
        "Env MTASTS_TLSRPT_CONTACT; [tlsrpt] contact.",
    )(f)
    return click.option(
        "--organization",
        help="organization-name of the reports (RFC 8460 §4.4). "
        "Env MTASTS_TLSRPT_ORGANIZATION; [tlsrpt] organization.",
    )(f)


@tlsrpt.command("reports")
@click.option("--day", help="UTC day YYYY-MM-DD (default: yesterday).")
@click.option("--store", help=STORE_HELP)
@_report_options
@click.option("--json", "as_json", is_flag=True, help="A JSON list of reports in RFC wire form.")
def reports(
    day: str | None, store: str | None, organization: str | None, contact: str | None, as_json: bool
) -> None:
    """Show the day's reports, one per policy domain, exactly as they would be sent.

    organization and contact come from [tlsrpt] of mtasts.toml (or the options).
    """
    cfg = _tlsrpt(
        {
            "store": ("--store", store),
            "organization": ("--organization", organization),
            "contact": ("--contact", contact),
        }
    )
    org, contact_info = _reporter(cfg)
    out = _reports_json(_day(day), _store(cfg), org, contact_info)
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


@tlsrpt.command("send")
@click.option("--day", help="UTC day YYYY-MM-DD to send (default: yesterday).")
@click.option(
    "--daemon",
    is_flag=True,
    help="Run for ever: after each UTC midnight send the finished day, retrying for 24 h.",
)
@click.option("--store", help=STORE_HELP)
@_report_options
@click.option(
    "--relay",
    help="host:port of the SMTP relay that takes report mail (your MTA; default "
    "127.0.0.1:25). Env MTASTS_TLSRPT_RELAY; [tlsrpt.send] relay.",
)
@click.option("--relay-starttls", is_flag=True, default=None, help="Use STARTTLS to the relay.")
@click.option(
    "--from",
    "sender",
    help="From address (default: --contact). Env MTASTS_TLSRPT_FROM; [tlsrpt.send] sender.",
)
@click.option(
    "--dkim-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM private key that DKIM-signs report mail (RFC 8460 §3 MUST). "
    "Env MTASTS_TLSRPT_DKIM_KEY; [tlsrpt.dkim] key.",
)
@click.option(
    "--dkim-selector",
    help="s= (default tlsrpt). Env MTASTS_TLSRPT_DKIM_SELECTOR; [tlsrpt.dkim] selector.",
)
@click.option(
    "--dkim-domain",
    help="d= (default: the submitter domain). Env MTASTS_TLSRPT_DKIM_DOMAIN.",
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
    help="Seconds after a UTC midnight before the finished day is built (late flushes; "
    "default 300).",
)
@click.option(
    "--unfinished",
    is_flag=True,
    help="Send a UTC day that is not over yet (its report is journaled once, incomplete).",
)
@click.option(
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
def send(
    day: str | None,
    daemon: bool,
    store: str | None,
    organization: str | None,
    contact: str | None,
    relay: str | None,
    relay_starttls: bool | None,
    sender: str | None,
    dkim_key: Path | None,
    dkim_selector: str | None,
    dkim_domain: str | None,
    spread: float | None,
    settle: int | None,
    unfinished: bool,
    retry_base: int | None,
    as_json: bool,
) -> None:
    """Deliver the reports (https POST and DKIM-signed mail), journaled and retried.

    Without --daemon: journal the day's reports, try every destination that is due, and
    exit 0 if nothing is left pending, 1 otherwise (run again, or run --daemon).
    """
    import time

    from mtasts.cli.configured import settings_tree
    from mtasts.config import Settings
    from mtasts.tlsrpt.aggregate import ReportSettings
    from mtasts.tlsrpt.deliver import DkimKey, SendSettings
    from mtasts.tlsrpt.settings import TlsRptSettings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if as_json and daemon:
        raise click.UsageError("--json reports one run: it does not go with --daemon")
    options = {
        "store": ("--store", store),
        "organization": ("--organization", organization),
        "contact": ("--contact", contact),
        "send.relay": ("--relay", relay),
        "send.relay_starttls": ("--relay-starttls", relay_starttls),
        "send.sender": ("--from", sender),
        "send.spread": ("--spread", spread),
        "send.settle": ("--settle", settle),
        "send.retry_base": ("--retry-base", retry_base),
        "dkim.key": ("--dkim-key", dkim_key),
        "dkim.selector": ("--dkim-selector", dkim_selector),
        "dkim.domain": ("--dkim-domain", dkim_domain),
    }
    tree = settings_tree({f"tlsrpt.{key}": given for key, given in options.items()})
    cfg, base = tree.section(TlsRptSettings), tree.section(Settings)
    org, contact_info = _reporter(cfg)
    store_url = _store(cfg)
    opts = cfg.send
    the_day = _day(day)
    end = datetime.combine(the_day + timedelta(days=1), datetime.min.time(), UTC).timestamp()
    if not daemon and not unfinished and time.time() < end + opts.settle:
        # A report is built and journaled once: built now, the rest of the day would
        # never be reported.
        raise click.BadParameter(
            f"{the_day.isoformat()} is not over yet (UTC, plus {opts.settle} s for the "
            "collectors' last flush): send it later, or pass --unfinished to send what "
            "was counted so far (that day is then never reported again)",
            param_hint="--day",
        )
    report = ReportSettings(org, contact_info)
    key = None
    if cfg.dkim.key is not None:
        key = DkimKey.load(cfg.dkim.domain or report.submitter, cfg.dkim.selector, cfg.dkim.key)
    settings = SendSettings(
        report=report,
        relay=opts.relay,
        relay_starttls=opts.relay_starttls,
        sender_address=opts.sender,
        dkim=key,
        ca_file=str(base.ca_file) if base.ca_file else None,
        nameserver=base.nameserver,
        spread=opts.spread if opts.spread is not None else (14400.0 if daemon else 0.0),
        first_retry=opts.retry_base,
        settle=opts.settle,
        keep_days=cfg.keep_days,
    )
    run = asyncio.run(_send(store_url, settings, the_day, daemon))
    if as_json:
        print_json(run)
    else:
        out = console()
        for a in run["attempts"]:
            mark = (
                "[green]sent[/green]"
                if a["sent"]
                else f"[red]{a['status']}[/red] {escape(a['error'])}"
            )
            where = escape(f"{a['policy_domain']} -> {a['destination']}")  # rua: theirs
            out.print(f"{where}: {mark}", highlight=False)
        for u in run["unresolved"]:
            out.print(
                f"{u['policy_domain']} ({u['day']}): TLS-RPT record lookup failed; run again",
                highlight=False,
            )
    pending = run["pending"] + len(run["unresolved"])
    if pending:
        raise SystemExit(1)


async def _send(store_url: str, settings: Any, day: date, daemon: bool) -> dict[str, Any]:
    """Send ``day`` (or run for ever with ``daemon``); what this run did, as the ``--json``
    object: the attempts, the domains whose record lookup failed, the rows still pending."""
    import time

    from mtasts.tlsrpt.deliver import Sender
    from mtasts.tlsrpt.store import TlsRptStore

    now = int(time.time())
    store = TlsRptStore.open(store_url)
    await store.create()
    sender = Sender(store, settings)
    try:
        if daemon:
            await sender.run_forever()
        attempts = await sender.send_days([day], now)
        await sender.prune(now)  # [tlsrpt] keep_days (nothing when unset)
        return {
            "day": day.isoformat(),
            "attempts": [
                {
                    "policy_domain": a.domain,
                    "destination": a.destination,
                    "sent": a.ok,
                    "status": a.status,
                    "error": a.error or None,
                }
                for a in attempts
            ],
            "unresolved": [
                {"policy_domain": domain, "day": d.isoformat()}
                for d, domain in sorted(sender.unresolved)
            ],
            "pending": sum(1 for d in await store.deliveries() if d.status == "pending"),
        }
    finally:
        await sender.aclose()
        await store.close()


@tlsrpt.command("status")
@click.option("--store", help=STORE_HELP)
@click.option("--day", help="Only this UTC day, YYYY-MM-DD (default: every day journaled).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (docs/json.md).")
def status(store: str | None, day: str | None, as_json: bool) -> None:
    """What `tlsrpt send` has pending, retrying, sent and given up, per day and destination.

    Read from the delivery journal of the store (the one `send` writes); newest day first.
    """
    from mtasts.tlsrpt.status import journal_status, status_json

    cfg = _tlsrpt({"store": ("--store", store)})
    only = _day(day) if day is not None else None
    rows = asyncio.run(_journal(_store(cfg)))
    days = journal_status(r for r in rows if only is None or r.day == only)
    if as_json:
        print_json(status_json(days))
        return
    _render_status(days)


async def _journal(store_url: str) -> list[Any]:
    from mtasts.tlsrpt.store import TlsRptStore

    store = TlsRptStore.open(store_url)
    try:
        await store.create()
        return await store.deliveries()
    finally:
        await store.close()


def _render_status(days: list[Any]) -> None:
    from rich.markup import escape
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


# receiving (issue 11): import, received, reprocess, prune
from mtasts.cli.tlsrpt_receive import register as _register_receive  # noqa: E402

_register_receive(tlsrpt)
tlsrpt.add_command(receive)  # the receiving side's network intake (its own module)
