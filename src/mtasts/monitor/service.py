"""``mtasts monitor``: check domains on a schedule, keep every result as history, raise and
clear conditions, export metrics.

One check of one domain (:meth:`Monitor.check`): ``mtasts check`` (the same runner), its
:class:`~mtasts.monitor.snapshot.Snapshot`, the previous stored check and the policy first
served with the current TXT id, the pure :func:`~mtasts.monitor.detect.conditions`, then
the row in the history, the gauges, and the alerts. :meth:`Monitor.run_once` checks every
domain once (cron, ``--once``); :meth:`Monitor.run_forever` gives each domain a task that
waits its interval plus a random jitter between checks, at most ``concurrency`` checks at
a time. A failure of one domain's check or of the store is logged and never stops the
others.

Alerts: the active conditions of each checked domain go to :func:`mtasts.alerts.sync`
(source ``monitor``, scope: that domain), which raises and resolves them once each and
notifies the channels of ``[alerts]`` (docs/alerts.md). Raised conditions are also logged
as warnings and cleared ones as information (logger ``mtasts.monitor``), and returned.

I/O module.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mtasts.check.finding import DomainReport
from mtasts.check.plugin import Thresholds, apply_thresholds
from mtasts.check.runner import Target, check_domain
from mtasts.clock import Clock, UtcClock, monotonic, utc_now
from mtasts.monitor import history
from mtasts.monitor.detect import Condition, conditions, transitions
from mtasts.monitor.metrics import MonitorMetrics
from mtasts.monitor.settings import MonitorSettings, Watched
from mtasts.monitor.snapshot import Snapshot, snapshot_of
from mtasts.rfc3339 import utc_text
from mtasts.store.engine import Database

log = logging.getLogger("mtasts.monitor")


@dataclass(frozen=True, slots=True)
class Checked:
    """The outcome of one check of one domain."""

    domain: str
    checked_at: datetime
    report: DomainReport
    snapshot: Snapshot
    conditions: tuple[Condition, ...]
    raised: tuple[Condition, ...]
    cleared: tuple[Condition, ...]
    stored: bool = True
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "checked_at": utc_text(self.checked_at),
            "status": self.report.status.name,
            "conditions": [c.to_json() for c in self.conditions],
            "raised": [c.to_json() for c in self.raised],
            "cleared": [c.to_json() for c in self.cleared],
            "stored": self.stored,
            "error": self.error,
            "snapshot": self.snapshot.to_json(),
        }


@dataclass
class Monitor:
    """Checks ``settings.watched`` against ``target`` and keeps the history in ``db``."""

    db: Database
    settings: MonitorSettings
    target: Target = field(default_factory=Target)
    clock: UtcClock = utc_now
    metrics: MonitorMetrics = field(default_factory=MonitorMetrics)
    rng: random.Random = field(default_factory=random.Random)
    on_checked: Callable[[Checked], None] | None = None
    alerts: bool = True  # False: no alert tables written, nothing notified
    alert_budget: float = 10.0  # seconds of delivery per sync; the rest is retried later
    monotonic: Clock = monotonic  # times each check (the duration histogram)
    _gate: asyncio.Semaphore | None = None
    _store_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def gate(self) -> asyncio.Semaphore:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.settings.concurrency)
        return self._gate

    async def check(self, domain: str) -> Checked:
        """Check one domain now (waits for a free slot of ``concurrency``)."""
        async with self.gate:
            now = self.clock()
            started = self.monotonic()
            report = await check_domain(domain, self.target, now=now)
            seconds = self.monotonic() - started
        cert_days = self.settings.cert_days
        report = apply_thresholds(report, now, Thresholds(cert_days[0], cert_days[-1]))
        snap = snapshot_of(report)
        error = ""
        stored = True
        async with self._store_lock:  # one statement at a time on the store's connection
            try:
                before = await history.latest(self.db, snap.domain)
                first = await history.first_policy_with_id(self.db, snap.domain, snap.sts_id)
            except Exception as exc:  # the store is down: judge without history
                log.error("monitor: reading the history of %s failed: %s", snap.domain, exc)
                before, first, error = None, None, f"{type(exc).__name__}: {exc}"
            previous = before.snapshot if before is not None else None
            old = before.conditions if before is not None else ()
            active = conditions(
                snap,
                previous,
                previous_conditions=old,
                first_policy_for_id=first,
                cert_days=self.settings.cert_days,
                now=now,
            )
            raised, cleared = transitions(old, active)
            try:
                await history.record_check(self.db, report, snap, active, now)
            except Exception as exc:
                log.error("monitor: storing the check of %s failed: %s", snap.domain, exc)
                stored, error = False, f"{type(exc).__name__}: {exc}"
            if self.alerts:
                error = await self._sync_alerts(snap.domain, active, now) or error
        self.metrics.update(snap, active, now, seconds)
        for c in raised:
            log.warning("monitor: RAISED %s %s %s: %s", c.severity, c.domain, c.key, c.summary)
        for c in cleared:
            log.info("monitor: CLEARED %s %s: %s", c.domain, c.key, c.summary)
        done = Checked(snap.domain, now, report, snap, active, raised, cleared, stored, error)
        if self.on_checked is not None:
            self.on_checked(done)
        return done

    async def _sync_alerts(self, domain: str, active: tuple[Condition, ...], now: datetime) -> str:
        """Hand the domain's whole active set to the alerts; an error as text."""
        from mtasts import alerts
        from mtasts.alerts.model import Condition as Alert
        from mtasts.alerts.model import Severity
        from mtasts.alerts.store import AlertStore

        try:
            items = [
                Alert(
                    c.key.partition(":")[0],
                    c.domain,
                    subject=c.key.partition(":")[2],
                    severity=Severity(c.severity),
                    summary=c.summary,
                )
                for c in active
            ]
            await alerts.sync(
                AlertStore(self.db),
                "monitor",
                items,
                domains={domain},
                budget=self.alert_budget,
                now=now.timestamp(),
            )
        except Exception as exc:  # a bad [alerts] table, the store down: log, go on
            log.error("monitor: the alerts for %s failed: %s", domain, exc)
            return f"alerts: {type(exc).__name__}: {exc}"
        return ""

    async def run_once(self, domains: Sequence[Watched] | None = None) -> list[Checked]:
        """Check every domain once, ``concurrency`` at a time; results in input order."""
        chosen = self.settings.watched if domains is None else domains
        await self.prune()
        return list(await asyncio.gather(*(self.check(w.name) for w in chosen)))

    async def prune(self) -> None:
        if self.settings.keep_days is None:
            return
        cutoff = self.clock() - timedelta(days=self.settings.keep_days)
        try:
            async with self._store_lock:
                gone = await history.prune_history(self.db, cutoff)
        except Exception as exc:
            log.error("monitor: pruning the history failed: %s", exc)
            return
        if gone:
            log.info("monitor: pruned %d check(s) older than %s", gone, cutoff.date())

    async def _watch(self, watched: Watched, stop: asyncio.Event) -> None:
        # spread the first checks over the jitter, then interval + jitter between checks
        wait = self.rng.uniform(0, self.settings.jitter)
        while not await _stopped(stop, wait):
            try:
                await self.check(watched.name)
            except Exception:  # never let one domain end the service
                log.exception("monitor: the check of %s failed", watched.name)
            wait = watched.interval + self.rng.uniform(0, self.settings.jitter)

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Watch every domain until ``stop`` is set; then return after the checks under
        way finish their current step."""
        tasks = [asyncio.ensure_future(self._watch(w, stop)) for w in self.settings.watched]
        prune = asyncio.ensure_future(self._prune_daily(stop))
        try:
            await stop.wait()
        finally:
            for t in (*tasks, prune):
                t.cancel()
            await asyncio.gather(*tasks, prune, return_exceptions=True)

    async def _prune_daily(self, stop: asyncio.Event) -> None:
        if self.settings.keep_days is None:
            return
        while True:
            await self.prune()
            if await _stopped(stop, 86400):
                return


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` unless ``stop`` is set first; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
