"""Prometheus metrics of the certificates (prefix ``mtasts_acme_``), one registry per server:

- ``certificate_not_after_seconds{name}``: expiry of the certificate served for the name;
- ``certificate_state{name, state}``: 1 for the current state (missing, valid,
  renewal-due, expiring, expired); alert on ``state="expiring"`` or ``"expired"``;
- ``alerts_total{name, state}``: times a name entered expiring or expired;
- ``issuance_total{result}``: issued, from-other-instance, failed, precheck-failed,
  rate-limited, queue-full;
- ``handshakes_total{kind}``: handshakes not served a certificate (no-sni,
  no-certificate) and tls-alpn-01 validations answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge

from mtasts.metricset import MetricSet, new_registry


@dataclass(slots=True)
class AcmeMetrics:
    registry: CollectorRegistry = field(default_factory=new_registry)
    not_after: Gauge = field(init=False)
    state: Gauge = field(init=False)
    alerts: Counter = field(init=False)
    issuance: Counter = field(init=False)
    handshakes: Counter = field(init=False)

    def __post_init__(self) -> None:
        m = MetricSet("mtasts_acme_", self.registry)
        self.not_after = m.gauge(
            "certificate_not_after_seconds",
            "Expiry (Unix time) of the certificate served for the name",
            "name",
        )
        self.state = m.gauge("certificate_state", "1 for the name's current state", "name", "state")
        self.alerts = m.counter(
            "alerts", "A name entered the expiring or expired state", "name", "state"
        )
        self.issuance = m.counter("issuance", "Issuance attempts by result", "result")
        self.handshakes = m.counter(
            "handshakes", "Handshakes by how their certificate was chosen", "kind"
        )
