"""``mtasts alerts run | list | test``: alerts on the received TLS-RPT reports.

Settings: ``[alerts]`` of mtasts.toml (docs/alerts.md); the store is the TLS-RPT store
(``--store``, ``$MTASTS_TLSRPT_STORE``, ``[tlsrpt] store``).

Exit status (docs/exit-codes.md): 0 success; 1 a channel failed; 2 usage; 75 the store is
unreachable; 78 a bad setting.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import click

from mtasts.cli.render import console, print_json
from mtasts.cli.store import run_on_store, store_option
from mtasts.clock import utc_today, wall


def _configured() -> tuple[Any, Any, str | None, frozenset[str]]:
    """(alert settings, resolver settings, CA file, [receive] owned_domains)."""
    from mtasts.alerts.api import configured_settings
    from mtasts.config import Settings
    from mtasts.settings.tree import current
    from mtasts.tlsrpt.receive.settings import ReceiveSection

    settings, ca_file = configured_settings()
    tree = current()
    owned = tree.section(ReceiveSection).decide.owned_domains
    return settings, tree.section(Settings), ca_file, owned


@click.group("alerts")
def alerts() -> None:
    """Alerts on the received TLS-RPT reports: rules, e-mail, webhook, Apprise."""


@alerts.command("run")
@store_option
@click.option("--once", is_flag=True, help="Evaluate the rules and deliver once, then exit.")
@click.option(
    "--metrics",
    "metrics_listen",
    metavar="HOST:PORT",
    help="Serve Prometheus metrics of the received reports at http://HOST:PORT/metrics "
    "([alerts] metrics).",
)
@click.option("--json", "as_json", is_flag=True, help="With --once: print the result as JSON.")
def run(store: str, once: bool, metrics_listen: str | None, as_json: bool) -> None:
    """Evaluate the rules after each intake and daily, and send the notifications.

    Without --once it runs until SIGTERM: it looks for new reports every [alerts] poll
    seconds, runs every rule at [alerts] daily_at (UTC), and retries notifications that
    could not be sent. A store or channel that fails is retried, never fatal."""
    from mtasts.alerts.channels import close_all, notifiers
    from mtasts.alerts.evaluate import run_rules
    from mtasts.alerts.service import AlertService, run_until_signalled
    from mtasts.alerts.store import AlertStore

    settings, base, ca_file, owned = _configured()
    metrics_listen = metrics_listen or settings.metrics or None
    if metrics_listen is not None and not once:
        try:
            import starlette  # noqa: F401
            import uvicorn  # noqa: F401
        except ImportError:
            from mtasts.errors import MissingDependency

            raise MissingDependency(
                "alerts --metrics", "web", module="starlette, uvicorn"
            ) from None
        from mtasts.tlsrpt.receive.netconfig import Listen

        Listen.parse(metrics_listen, "--metrics")  # a ConfigError: 78 (docs/exit-codes.md)

    async def main() -> Any:
        opened = AlertStore.open(store)
        channels = notifiers(settings, ca_file=ca_file)
        try:
            if once:
                await opened.upgrade()
                return await run_rules(
                    opened,
                    settings,
                    today=utc_today(),
                    base=base,
                    owned=owned,
                    channels=channels,
                    ca_file=ca_file,
                )
            service = AlertService(opened, settings, base, channels, owned=owned, ca_file=ca_file)
            await _upgrade_until_ready(opened)

            def ready(lines: list[str]) -> None:
                for line in lines:
                    click.echo(f"listening: {line}", err=True)
                click.echo(f"alerts: watching {store.split('@')[-1]}", err=True)

            await run_until_signalled(service, metrics=metrics_listen, ready=ready)
            return None
        finally:
            await close_all(channels)
            await opened.close()

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    result = run_on_store(main)
    if result is None:
        return
    if as_json:
        print_json(result.to_json())
    else:
        out = console()
        out.print(
            f"raised {len(result.raised)}, still open {len(result.repeated)}, "
            f"resolved {len(result.resolved)}",
            highlight=False,
            markup=False,
        )
        for key in result.raised:
            out.print(f"  raised   {key}", highlight=False, markup=False)
        for key in result.resolved:
            out.print(f"  resolved {key}", highlight=False, markup=False)
        if result.delivered is not None:
            d = result.delivered
            out.print(
                f"notifications: {d.sent} sent, {d.failed} failed", highlight=False, markup=False
            )
            for error in d.errors:
                out.print(f"  {error}", highlight=False, markup=False)
    if result.delivered is not None and result.delivered.failed:
        raise SystemExit(1)


async def _upgrade_until_ready(store: Any, *, pause: float = 5.0) -> None:
    """The schema upgrade at start, retried while the store is unreachable (a service
    that starts before its database must not exit)."""
    while True:
        try:
            await store.upgrade()
            return
        except Exception as exc:
            logging.getLogger(__name__).warning(
                "alerts: the store is not reachable yet (%s: %s); retrying",
                type(exc).__name__,
                exc,
            )
            await store.db.reset()
            await asyncio.sleep(pause)


@alerts.command("list")
@store_option
@click.option("--all", "show_all", is_flag=True, help="Resolved conditions too (the newest 100).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(store: str, show_all: bool, as_json: bool) -> None:
    """The open conditions (and the notifications that could not be delivered)."""
    from mtasts.alerts.store import AlertStore

    async def main() -> tuple[list[dict[str, Any]], dict[str, int]]:
        opened = AlertStore.open(store)
        try:
            await opened.upgrade()
            if show_all:
                rows = await opened.history()
            else:
                rows = [o.to_json() for o in await opened.open_conditions()]
            return rows, await opened.outbox_counts()
        finally:
            await opened.close()

    rows, outbox = run_on_store(main)
    if as_json:
        from mtasts.rfc3339 import utc_text

        instants = ("first_seen", "last_seen", "resolved_at")  # docs/json.md: RFC 3339 UTC
        shown = [{k: utc_text(v) if k in instants else v for k, v in r.items()} for r in rows]
        print_json({"conditions": shown, "notifications": outbox})
        return
    from rich.table import Table
    from rich.text import Text

    out = console()
    if not rows:
        out.print(
            "no open conditions" if not show_all else "no conditions", highlight=False, markup=False
        )
    else:
        table = Table("severity", "domain", "condition", "since", "summary")
        for r in rows:
            since = datetime.fromtimestamp(r["first_seen"], UTC).strftime("%Y-%m-%d %H:%M")
            state = r["severity"] if r.get("resolved_at") is None else "resolved"
            # text, never rich markup: summaries quote what senders wrote ("[/x]" ...)
            cells = (state, r["domain"] or "-", r["key"], since, r["summary"])
            table.add_row(*(Text(c) for c in cells))
        out.print(table)
    pending, failed = outbox.get("pending", 0), outbox.get("failed", 0)
    if pending or failed:
        out.print(
            f"notifications: {pending} waiting to be sent, {failed} given up", highlight=False
        )


@alerts.command("test")
@click.option("--json", "as_json", is_flag=True, help="Print the result per channel as JSON.")
def test(as_json: bool) -> None:
    """Send a test notification through every configured channel (now, not queued)."""
    from mtasts.alerts.channels import close_all, notifiers
    from mtasts.alerts.message import Message

    settings, _, ca_file, _ = _configured()
    if not settings.channels:
        raise click.UsageError(
            "no channel configured: add [alerts.email], [alerts.webhook] or [alerts.apprise]"
        )
    message = Message.test(now=int(wall()))

    async def main() -> dict[str, str | None]:
        channels = notifiers(settings, ca_file=ca_file)
        results: dict[str, str | None] = {}
        try:
            for name, channel in channels.items():
                try:
                    await channel.send(message)
                    results[name] = None
                except Exception as exc:
                    results[name] = str(exc) or type(exc).__name__
        finally:
            await close_all(channels)
        return results

    results = run_on_store(main)
    if as_json:
        print_json({name: {"ok": err is None, "error": err} for name, err in results.items()})
    else:
        out = console()
        for name, err in results.items():
            out.print(
                f"{name}: " + ("sent" if err is None else f"FAILED: {err}"),
                highlight=False,
                markup=False,
            )
    if any(err is not None for err in results.values()):
        raise SystemExit(1)
