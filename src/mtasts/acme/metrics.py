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

_P = "mtasts_acme_"


@dataclass(slots=True)
class AcmeMetrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    not_after: Gauge = field(init=False)
    state: Gauge = field(init=False)
    alerts: Counter = field(init=False)
    issuance: Counter = field(init=False)
    handshakes: Counter = field(init=False)

    def __post_init__(self) -> None:
        r = self.registry
        self.not_after = Gauge(
            _P + "certificate_not_after_seconds",
            "Expiry (Unix time) of the certificate served for the name",
            ["name"],
            registry=r,
        )
        self.state = Gauge(
            _P + "certificate_state",
            "1 for the name's current state",
            ["name", "state"],
            registry=r,
        )
        self.alerts = Counter(
            _P + "alerts",
            "A name entered the expiring or expired state",
            ["name", "state"],
            registry=r,
        )
        self.issuance = Counter(
            _P + "issuance", "Issuance attempts by result", ["result"], registry=r
        )
        self.handshakes = Counter(
            _P + "handshakes",
            "Handshakes by how their certificate was chosen",
            ["kind"],
            registry=r,
        )
