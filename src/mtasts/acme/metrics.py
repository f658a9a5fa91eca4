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

from prometheus_client import CollectorRegistry

from mtasts.metricset import MetricSet, new_registry


class AcmeMetrics:
    """One server's certificate metrics (listed above) on ``registry``, by default a new
    one of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        m = MetricSet("mtasts_acme_", registry or new_registry())
        self.registry = m.registry
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
