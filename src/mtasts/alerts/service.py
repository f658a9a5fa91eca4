"""``mtasts alerts run``: evaluate the rules after each intake and daily, deliver the
outbox, serve the metrics.

I/O. Every ``poll`` seconds the service asks the store one cheap question (the newest
report's key and the number of reports, :func:`~mtasts.alerts.queries.change_marker`);
when the answer changed since the last look, reports were stored (by ``tlsrpt
receive``, ``tlsrpt import``, on any host writing to this store) and the rules run at
once: an alert comes within ``poll`` seconds of the report that causes it, with no
hook in the intake. At ``daily_at`` (UTC) the rules run whatever happened (the
time-based rules: a reporter that stopped, no reports). Between evaluations the outbox
is drained (retries).

Nothing stops the service but a signal: a store that cannot be reached, a policy host
that does not answer, a channel that fails are logged and retried at the next poll,
each evaluation bounded by ``evaluation_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from mtasts.alerts import queries
from mtasts.alerts.api import SyncResult
from mtasts.alerts.channels import Notifier, close_all
from mtasts.alerts.deliver import Delivered, deliver_due
from mtasts.alerts.evaluate import run_rules
from mtasts.alerts.metrics import ReceivedCollector, figures, open_counts, registry, render
from mtasts.alerts.settings import AlertSettings
from mtasts.alerts.store import AlertStore
from mtasts.clock import Clock, wall
from mtasts.config import Settings
from mtasts.runtime import stop_event

log = logging.getLogger(__name__)
METRICS_EVERY = 300.0  # seconds between two reads of the per-domain figures


@dataclass(frozen=True, slots=True)
class Tick:
    """What one poll did."""

    evaluated: str | None = None  # "intake" | "daily" | "start" | None
    result: SyncResult | None = None
    delivered: Delivered | None = None
    error: str | None = None


class AlertService:
    def __init__(
        self,
        store: AlertStore,
        settings: AlertSettings,
        base: Settings,
        channels: Mapping[str, Notifier],
        *,
        owned: Iterable[str] = (),
        ca_file: str | None = None,
        clock: Clock = wall,
        evaluation_timeout: float = 300.0,
    ) -> None:
        self.store = store
        self.settings = settings
        self.base = base
        self.channels = channels
        self.owned = tuple(owned)
        self.ca_file = ca_file
        self.clock = clock
        self.evaluation_timeout = evaluation_timeout
        self.collector = ReceivedCollector()
        self.registry = registry(self.collector)
        self._marker: tuple[int, int] | None = None
        self._daily_done: date | None = None
        self._failures = 0
        self._last_evaluation: float | None = None
        self._figures_at: float | None = None
        self._figures_dirty = True

    def _today(self) -> date:
        return datetime.fromtimestamp(self.clock(), UTC).date()

    def _daily_due(self) -> bool:
        now = datetime.fromtimestamp(self.clock(), UTC)
        hour, minute = self.settings.daily_time
        return self._daily_done != now.date() and (now.hour, now.minute) >= (hour, minute)

    async def tick(self) -> Tick:
        """One poll; never raises (see the module docstring)."""
        try:
            return await asyncio.wait_for(self._tick(), self.evaluation_timeout)
        except Exception as exc:  # anything: logged, counted, retried at the next poll
            self._failures += 1
            self.collector.figures.evaluation_failures = self._failures
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            log.warning("alerts: evaluation failed, retrying at the next poll: %s", why)
            await self.store.db.reset()
            return Tick(error=why)

    async def _tick(self) -> Tick:
        db = self.store.db
        marker = await queries.change_marker(db)
        why = None
        if self._marker is None:
            why = "start"
        elif marker != self._marker:
            why = "intake"
        elif self._daily_due():
            why = "daily"
        if why is None:
            delivered = await deliver_due(
                self.store,
                self.channels,
                give_up_after=int(self.settings.give_up_hours * 3600),
                clock=self.clock,
            )
            await self._refresh(changed=False)
            return Tick(delivered=delivered)
        result = await run_rules(
            self.store,
            self.settings,
            today=self._today(),
            base=self.base,
            owned=self.owned,
            channels=self.channels,
            ca_file=self.ca_file,
            now=self.clock(),
        )
        self._marker = marker
        if self._daily_due() or why == "daily":
            self._daily_done = self._today()
        self._last_evaluation = self.clock()
        await self._refresh(changed=True)
        if result.raised or result.resolved:
            log.info(
                "alerts (%s): raised %s, resolved %s",
                why,
                ", ".join(result.raised) or "-",
                ", ".join(result.resolved) or "-",
            )
        return Tick(evaluated=why, result=result, delivered=result.delivered)

    async def _refresh(self, *, changed: bool) -> None:
        # The per-domain figures read the whole store (3 s for a year of 100 reporters,
        # docs/benchmarks.md): at most every METRICS_EVERY seconds under steady intake.
        now = self.clock()
        self._figures_dirty |= changed
        stale = self._figures_at is None or now - self._figures_at >= METRICS_EVERY
        if self._figures_dirty and stale:
            fig = await figures(self.store.db, self.store, self._today())
            self._figures_at, self._figures_dirty = now, False
        else:  # the outbox and the conditions moved
            fig = self.collector.figures
            fig.notifications = await self.store.outbox_counts()
            fig.open_conditions = await open_counts(self.store)
        fig.last_evaluation = self._last_evaluation
        fig.evaluation_failures = self._failures
        self.collector.figures = fig

    def metrics(self) -> bytes:
        return render(self.registry)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set."""
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.poll)


def metrics_app(service: AlertService, path: str = "/metrics") -> Any:
    """A Starlette app serving ``path`` (the [web] extra)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from mtasts.metricset import CONTENT_TYPE

    async def serve(request: Request) -> Response:
        return Response(service.metrics(), media_type=CONTENT_TYPE)

    return Starlette(routes=[Route(path, serve, methods=["GET"])])


async def run_until_signalled(
    service: AlertService,
    *,
    metrics: str | None = None,
    ready: Callable[[list[str]], Any] | None = None,
) -> None:
    """Run the service (and the metrics listener at ``metrics``, HOST:PORT) until
    SIGTERM or SIGINT."""
    server = None
    try:
        with stop_event() as stop:
            lines = []
            if metrics is not None:
                from mtasts.tlsrpt.receive.httpserve import HttpServer, bind
                from mtasts.tlsrpt.receive.netconfig import Listen, NetConfig

                server = HttpServer(
                    metrics_app(service), NetConfig(), bind(Listen.parse(metrics, "--metrics"))
                )
                await server.start()
                host, port = server.sock.getsockname()[:2]
                where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                lines.append(f"metrics http {where} GET /metrics")
            if ready is not None:
                ready(lines)
            await service.run(stop)
    finally:
        if server is not None:
            await server.stop()
        await close_all(service.channels)
