"""Prometheus gauges of ``mtasts monitor`` (prometheus-client, one registry per monitor).

``mtasts_monitor_status{domain}``                the last check's status: 0 OK, 1 WARNING,
                                                 2 CRITICAL, 3 UNKNOWN (the check's exit code)
``mtasts_monitor_conditions{domain,severity}``   active conditions
``mtasts_monitor_cert_expiry_days{domain,host}`` whole days until each certificate (the
                                                 policy host's and every MX's) expires
``mtasts_monitor_last_check_timestamp_seconds{domain}``
``mtasts_monitor_check_seconds{domain}``         how long the last check took

Served by :func:`serve` on a listener of its own (``--metrics HOST:PORT``), never with
authentication: bind it to loopback or a private address.

I/O module (the listener).
"""

from __future__ import annotations

from datetime import datetime
from wsgiref.simple_server import WSGIServer

from prometheus_client import start_http_server

from mtasts.metricset import MetricSet
from mtasts.monitor.detect import CRITICAL, WARNING, Condition, days_left
from mtasts.monitor.snapshot import Snapshot
from mtasts.rfcnames import policy_host


class MonitorMetrics:
    def __init__(self) -> None:
        m = MetricSet("mtasts_monitor_")
        self.registry = m.registry
        self.status = m.gauge(
            "status", "Last check status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.", "domain"
        )
        self.conditions = m.gauge(
            "conditions", "Active monitoring conditions.", "domain", "severity"
        )
        self.cert_days = m.gauge(
            "cert_expiry_days",
            "Whole days until the certificate expires (negative once expired).",
            "domain",
            "host",
        )
        self.last_check = m.gauge(
            "last_check_timestamp_seconds",
            "When the domain was last checked (Unix time).",
            "domain",
        )
        self.duration = m.gauge(
            "check_seconds", "How long the last check of the domain took.", "domain"
        )
        self._hosts: dict[str, set[str]] = {}

    def update(
        self,
        snap: Snapshot,
        conditions: tuple[Condition, ...],
        now: datetime,
        seconds: float,
    ) -> None:
        d = snap.domain
        self.status.labels(d).set(int(snap.status))
        for severity in (WARNING, CRITICAL):
            n = sum(1 for c in conditions if c.severity == severity)
            self.conditions.labels(d, severity).set(n)
        hosts: dict[str, datetime] = {m.host: m.not_after for m in snap.mx if m.not_after}
        if snap.policy_host_not_after is not None:
            hosts[policy_host(d)] = snap.policy_host_not_after
        if snap.checked:  # an unfinished check says nothing about the certificates
            for gone in self._hosts.get(d, set()) - set(hosts):
                self.cert_days.remove(d, gone)
            for host, not_after in hosts.items():
                self.cert_days.labels(d, host).set(days_left(not_after, now))
            self._hosts[d] = set(hosts)
        self.last_check.labels(d).set(now.timestamp())
        self.duration.labels(d).set(round(seconds, 3))


def serve(metrics: MonitorMetrics, host: str, port: int) -> WSGIServer:
    """Start the listener (a thread of prometheus-client's); ``.shutdown()`` stops it and
    ``.server_address`` says where it listens (port 0 picks a free one)."""
    server, _ = start_http_server(port, host, registry=metrics.registry)
    return server
