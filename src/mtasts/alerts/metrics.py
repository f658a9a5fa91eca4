"""Prometheus metrics of the received reports per domain, and of the alerts.

The figures are computed from the store by :func:`figures` (when reports were stored,
reprocessed or pruned, and daily) and exposed by ``mtasts alerts run --metrics
HOST:PORT`` through :class:`ReceivedCollector`, which renders the last figures: a
scrape never touches the database.

Names (``domain`` is a policy domain; at most :data:`MAX_DOMAINS`, the busiest):

- ``mtasts_tlsrpt_received_sessions_total{domain, outcome}``: sessions in all stored
  reports, ``outcome`` successful | failed (counter; a retention prune lowers it, which
  Prometheus reads as a counter reset);
- ``mtasts_tlsrpt_received_failures_total{domain, result_type}``: failed sessions by
  result type (``failed-session-count`` summed; types outside the RFC 8460 registry are
  counted as ``other``);
- ``mtasts_tlsrpt_received_reports_total{domain}``: stored reports;
- ``mtasts_tlsrpt_received_day_sessions{domain, outcome}`` and
  ``mtasts_tlsrpt_received_day_failure_ratio{domain}``: the newest complete UTC day
  (yesterday), the day a dashboard shows first;
- ``mtasts_tlsrpt_received_last_report_timestamp_seconds{domain}``: when the newest
  report for the domain was stored;
- ``mtasts_alerts_open_conditions{kind, severity}``, ``mtasts_alerts_notifications{status}``
  (pending | sent | failed), ``mtasts_alerts_last_evaluation_timestamp_seconds``,
  ``mtasts_alerts_evaluation_failures_total``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mtasts.alerts import queries
from mtasts.alerts.store import AlertStore
from mtasts.results import ResultType
from mtasts.store.engine import Database
from mtasts.tlsrpt.receive.received_query import day_summaries

MAX_DOMAINS = 1000
_R = "mtasts_tlsrpt_received_"
_A = "mtasts_alerts_"

#: every metric name a scrape can show (the Grafana dashboard's test checks against it)
NAMES = frozenset(
    {
        _R + "sessions_total",
        _R + "failures_total",
        _R + "reports_total",
        _R + "day_sessions",
        _R + "day_failure_ratio",
        _R + "last_report_timestamp_seconds",
        _A + "open_conditions",
        _A + "notifications",
        _A + "last_evaluation_timestamp_seconds",
        _A + "evaluation_failures_total",
    }
)


@dataclass(slots=True)
class DomainFigures:
    successful: int = 0
    failed: int = 0
    reports: int = 0
    by_type: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    day_successful: int = 0
    day_failed: int = 0
    last_stored: int | None = None


@dataclass(slots=True)
class Figures:
    domains: dict[str, DomainFigures] = field(default_factory=dict)
    open_conditions: dict[tuple[str, str], int] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)
    last_evaluation: float | None = None
    evaluation_failures: int = 0


async def figures(db: Database, store: AlertStore, today: date) -> Figures:
    """The figures of every domain from the store (reads everything once)."""
    yesterday = (today - timedelta(days=1)).isoformat()
    per: dict[str, DomainFigures] = defaultdict(DomainFigures)
    for d in await day_summaries(db):
        f = per[d.domain]
        f.successful += d.sessions.successful
        f.failed += d.sessions.failed
        f.reports += d.reports
        for kind, n in d.failures_by_result_type.items():
            f.by_type[kind if ResultType.parse(kind) else "other"] += n
        if d.day == yesterday:
            f.day_successful += d.sessions.successful
            f.day_failed += d.sessions.failed
    for domain, at in (await queries.last_stored(db)).items():
        if domain in per:
            per[domain].last_stored = at
    busiest = sorted(per, key=lambda k: (-(per[k].successful + per[k].failed), k))
    kept = {k: per[k] for k in sorted(busiest[:MAX_DOMAINS])}
    return Figures(kept, await open_counts(store), await store.outbox_counts())


async def open_counts(store: AlertStore) -> dict[tuple[str, str], int]:
    """Open conditions by (kind, severity)."""
    conditions: dict[tuple[str, str], int] = defaultdict(int)
    for o in await store.open_conditions():
        conditions[o.condition.kind, str(o.condition.severity)] += 1
    return dict(conditions)


class ReceivedCollector(Collector):
    """Renders the last :class:`Figures` (replace ``figures`` to update)."""

    def __init__(self) -> None:
        self.figures = Figures()

    def collect(self) -> Iterator[Metric]:
        fig = self.figures
        sessions = CounterMetricFamily(
            _R + "sessions", "Sessions in the stored reports", labels=["domain", "outcome"]
        )
        failures = CounterMetricFamily(
            _R + "failures",
            "Failed sessions in the stored reports by result type",
            labels=["domain", "result_type"],
        )
        reports = CounterMetricFamily(_R + "reports", "Stored reports", labels=["domain"])
        day = GaugeMetricFamily(
            _R + "day_sessions",
            "Sessions reported for the newest complete UTC day",
            labels=["domain", "outcome"],
        )
        ratio = GaugeMetricFamily(
            _R + "day_failure_ratio",
            "Failed / all sessions reported for the newest complete UTC day",
            labels=["domain"],
        )
        last = GaugeMetricFamily(
            _R + "last_report_timestamp_seconds",
            "When the newest report for the domain was stored",
            labels=["domain"],
        )
        for domain, f in fig.domains.items():
            sessions.add_metric([domain, "successful"], f.successful)
            sessions.add_metric([domain, "failed"], f.failed)
            reports.add_metric([domain], f.reports)
            for kind, n in sorted(f.by_type.items()):
                failures.add_metric([domain, kind], n)
            day.add_metric([domain, "successful"], f.day_successful)
            day.add_metric([domain, "failed"], f.day_failed)
            total = f.day_successful + f.day_failed
            ratio.add_metric([domain], f.day_failed / total if total else 0.0)
            if f.last_stored is not None:
                last.add_metric([domain], f.last_stored)
        yield from (sessions, failures, reports, day, ratio, last)
        conditions = GaugeMetricFamily(
            _A + "open_conditions", "Open alert conditions", labels=["kind", "severity"]
        )
        for (kind, severity), n in sorted(fig.open_conditions.items()):
            conditions.add_metric([kind, severity], n)
        notes = GaugeMetricFamily(
            _A + "notifications", "Notifications in the outbox by status", labels=["status"]
        )
        for status in ("pending", "sent", "failed"):
            notes.add_metric([status], fig.notifications.get(status, 0))
        evaluated = GaugeMetricFamily(
            _A + "last_evaluation_timestamp_seconds", "When the rules last ran to completion"
        )
        if fig.last_evaluation is not None:
            evaluated.add_metric([], fig.last_evaluation)
        failed = CounterMetricFamily(
            _A + "evaluation_failures", "Evaluations that failed (store unreachable, ...)"
        )
        failed.add_metric([], fig.evaluation_failures)
        yield from (conditions, notes, evaluated, failed)


def registry(collector: ReceivedCollector) -> CollectorRegistry:
    r = CollectorRegistry(auto_describe=False)
    r.register(collector)
    return r


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
