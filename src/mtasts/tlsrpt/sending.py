"""``tlsrpt send``, ``reports`` and ``status`` as runs over a store: what the commands
call, each returning typed values for the command to render.

* :func:`send_settings`: what the sender needs, from ``[tlsrpt]`` and the resolver's keys;
* :func:`send`: journal a day's reports and try what is due (or, ``forever``, run the
  sender's daemon loop): a :class:`SendRun`;
* :func:`day_reports`: the reports of a day exactly as ``send`` would build them;
* :func:`journal`: the delivery journal ``send`` keeps (``tlsrpt status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from mtasts.clock import wall
from mtasts.tlsrpt.aggregate import BuiltReport, ReportSettings, build_reports
from mtasts.tlsrpt.deliver import Attempt, Sender, SendSettings
from mtasts.tlsrpt.store import Delivery, TlsRptStore

if TYPE_CHECKING:
    from mtasts.config import Settings
    from mtasts.tlsrpt.settings import TlsRptSettings


@dataclass(frozen=True, slots=True)
class SendRun:
    """What one ``tlsrpt send`` run did."""

    day: date
    attempts: tuple[Attempt, ...]
    #: (day, policy domain) whose TLS-RPT record lookup failed: not journaled yet
    unresolved: tuple[tuple[date, str], ...]
    pending: int  # journal rows still pending after the run

    @property
    def left(self) -> int:
        """Reports not delivered yet: pending ones and those not journaled."""
        return self.pending + len(self.unresolved)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object (docs/json.md)."""
        return {
            "day": self.day.isoformat(),
            "attempts": [
                {
                    "policy_domain": a.domain,
                    "destination": a.destination,
                    "sent": a.ok,
                    "status": a.status,
                    "error": a.error or None,
                }
                for a in self.attempts
            ],
            "unresolved": [
                {"policy_domain": domain, "day": d.isoformat()} for d, domain in self.unresolved
            ],
            "pending": self.pending,
        }


async def send(store_url: str, settings: SendSettings, day: date, *, forever: bool) -> SendRun:
    """Journal ``day``'s reports and try every destination that is due, then apply
    ``keep_days``; with ``forever`` run the sender's loop instead (until cancelled)."""
    now = int(wall())
    store = TlsRptStore.open(store_url)
    await store.create()
    sender = Sender(store, settings)
    try:
        if forever:
            await sender.run_forever()
        attempts = await sender.send_days([day], now)
        await sender.prune(now)  # [tlsrpt] keep_days (nothing when unset)
        pending = sum(1 for d in await store.deliveries() if d.status == "pending")
        return SendRun(day, tuple(attempts), tuple(sorted(sender.unresolved)), pending)
    finally:
        await sender.aclose()
        await store.close()


async def day_reports(store_url: str, day: date, settings: ReportSettings) -> list[BuiltReport]:
    """The reports of ``day``, one per policy domain, as ``send`` would build them."""
    store = TlsRptStore.open(store_url)
    try:
        await store.create()
        counters = await store.load_day(day)
    finally:
        await store.close()
    return build_reports(counters, day, settings)


async def journal(store_url: str) -> list[Delivery]:
    """Every row of the delivery journal."""
    store = TlsRptStore.open(store_url)
    try:
        await store.create()
        return await store.deliveries()
    finally:
        await store.close()


def send_settings(cfg: TlsRptSettings, base: Settings, *, forever: bool) -> SendSettings:
    """What the sender needs, from ``[tlsrpt]`` and the resolver's settings: the reporter
    (a usage error first when unset: :func:`mtasts.cli.tlsrpt_config.reporter`), the
    DKIM key (read now: a bad one stops the command at start), relay, retries."""
    from mtasts.tlsrpt.deliver import DkimKey

    opts = cfg.send
    report = ReportSettings(cfg.organization, cfg.contact)
    key = None
    if cfg.dkim.key is not None:
        key = DkimKey.load(cfg.dkim.domain or report.submitter, cfg.dkim.selector, cfg.dkim.key)
    return SendSettings(
        report=report,
        relay=opts.relay,
        relay_starttls=opts.relay_starttls,
        sender_address=opts.sender,
        dkim=key,
        ca_file=str(base.ca_file) if base.ca_file else None,
        nameserver=base.nameserver,
        spread=opts.spread if opts.spread is not None else (14400.0 if forever else 0.0),
        first_retry=opts.retry_base,
        settle=opts.settle,
        keep_days=cfg.keep_days,
    )
