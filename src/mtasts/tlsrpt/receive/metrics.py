"""Prometheus metrics of the intake, one registry per running service.

Names (all prefixed ``mtasts_tlsrpt_intake_``):

- ``received_total{channel, disposition}``: every ingest outcome (stored, duplicate,
  quarantined, refused) by channel (https, smtp, lmtp, imap);
- ``refused_total{channel, reason}``: refusals, by the Receiver's reason code or by the
  network layer's (``rate-limited``, ``busy``, ``client-busy``, ``media-type``,
  ``too-large``, ``timeout``, ``bad-secret``, ``store-failed``);
- ``duplicates_total{channel}``;
- ``dkim_total{verdict}``: DKIM verdicts of mail reports (pass, fail, none, ...);
- ``store_seconds{channel}``: time from the handover to the Receiver to its answer;
- ``inflight``: ingests in progress.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from mtasts.metricset import MetricSet, new_registry

__all__ = ["IntakeMetrics"]

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class IntakeMetrics:
    """One intake service's metrics (listed above) on ``registry``, by default a new one
    of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        m = MetricSet("mtasts_tlsrpt_intake_", registry or new_registry())
        self.registry = m.registry
        self.received = m.counter(
            "received", "Reports handed to the store, by outcome", "channel", "disposition"
        )
        self.refused = m.counter(
            "refused", "Reports or requests refused, by reason", "channel", "reason"
        )
        self.duplicates = m.counter("duplicates", "Reports already stored", "channel")
        self.dkim = m.counter("dkim", "DKIM verdicts of report mail", "verdict")
        self.store_seconds = m.histogram(
            "store_seconds",
            "Seconds the store took to answer one ingest",
            "channel",
            buckets=_BUCKETS,
        )
        self.inflight = m.gauge("inflight", "Ingests in progress")

    def outcome(self, channel: str, disposition: str, reason_code: str | None) -> None:
        name = disposition.lower()
        self.received.labels(channel, name).inc()
        if name == "duplicate":
            self.duplicates.labels(channel).inc()
        elif name == "refused":
            self.refused.labels(channel, reason_code or "unknown").inc()

    def refuse(self, channel: str, reason: str) -> None:
        self.refused.labels(channel, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
