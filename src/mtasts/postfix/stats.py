"""Counts the socketmap server keeps as plain ints, exposed on /metrics when scraped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric


class ServerStats:
    """Connection management and policy-failure counts, read when /metrics is scraped
    (plain ints on the server: nothing is added to any request's path)."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        srv = self.server
        closed = CounterMetricFamily(
            "mtasts_socketmap_connections_closed",
            "Client connections closed to make room (evicted: the oldest idle one, at "
            "max_connections or out of file descriptors) or refused (all busy).",
            labels=["reason"],
        )
        closed.add_metric(["evicted"], srv.evicted)
        closed.add_metric(["refused"], srv.refused)
        yield closed
        yield CounterMetricFamily(
            "mtasts_socketmap_accept_fd_exhausted",
            "Accepts that failed for lack of file descriptors (EMFILE, ENFILE).",
            value=srv.fd_exhausted_total,
        )
        yield GaugeMetricFamily(
            "mtasts_socketmap_connections_open", "Client connections open.", len(srv._connections)
        )
        counted = getattr(srv.failures, "counted", None)
        if counted is not None:
            yield CounterMetricFamily(
                "mtasts_tlsrpt_policy_failure_sessions",
                "Policy-failure sessions counted for the TLS-RPT store (RFC 8461 §6).",
                value=counted,
            )
