"""Declaring a component's Prometheus metrics: every name under the component's prefix,
on the component's own registry (one per running service, so tests and two services in
one process never share counters).

``MetricSet("mtasts_acme_").counter("issuance", "...", "result")`` declares
``mtasts_acme_issuance_total{result}`` (prometheus-client adds ``_total`` to counters).
The names and labels are a contract: tests and contrib/grafana read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: the media type of :meth:`MetricSet.render`'s text
CONTENT_TYPE = CONTENT_TYPE_LATEST


def new_registry() -> CollectorRegistry:
    """A registry of one component's own (metrics then describe themselves on register)."""
    return CollectorRegistry(auto_describe=True)


@dataclass(frozen=True, slots=True)
class MetricSet:
    """The metrics of one component: ``prefix`` + name, registered on ``registry``."""

    prefix: str
    registry: CollectorRegistry = field(default_factory=new_registry)

    def counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(self.prefix + name, doc, labels, registry=self.registry)

    def gauge(self, name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(self.prefix + name, doc, labels, registry=self.registry)

    def histogram(self, name: str, doc: str, *labels: str, buckets: tuple[float, ...]) -> Histogram:
        return Histogram(self.prefix + name, doc, labels, buckets=buckets, registry=self.registry)

    def render(self) -> bytes:
        """The Prometheus text exposition of the registry."""
        return generate_latest(self.registry)
