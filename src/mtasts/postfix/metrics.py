"""The daemon's Prometheus metrics (prometheus-client, one registry per daemon).

What is counted:

- ``mtasts_socketmap_answers_total{kind}``: every answer, by kind (``ok``, ``notfound``,
  ``temp``, ``timeout``, ``perm``; ``answer-cache`` = a rendered answer reused within
  ``answer_ttl``; ``notfound-key`` = a key with no Policy Domain; ``error``,
  ``bad-request``, ``bad-framing``).
- ``mtasts_socketmap_policy_lookups_total{source}``: the resolver lookups behind those
  answers, by where the policy came from: ``cache`` (a cache hit) or ``fetched``.
- ``mtasts_socketmap_policy_failures_total{result_type,applied}``: lookups that carried a
  failure, by its TLS-RPT result type; ``applied="none"`` when no policy could be used
  (status ``failed``), ``"cached"`` when a cached policy was applied although refreshing
  it failed.
- ``mtasts_socketmap_connections_total`` and the ``mtasts_socketmap_lookup_seconds``
  histogram (answers that needed a lookup).

Hot path: a prometheus-client ``inc()`` costs about 0.5 µs (a lock), 5-8 % of a reused
answer. So the label children are bound once, and the reused-answer count is a plain int
(:attr:`Metrics.fast_hits`) folded into ``answers_total{kind="answer-cache"}`` when the
metrics are scraped. Answers given from memory without awaiting anything (the resolver's
cached answer, no failure to report) are plain ints too (:attr:`Metrics.memory_answers`,
by reply status), folded into ``answers_total{kind}`` and
``policy_lookups_total{source="cache"}`` at scrape; they take microseconds and are not
observed by the latency histogram, which times the answers that had to wait for a
lookup (a cache miss, a backend read, DNS).
"""

from __future__ import annotations

from collections import defaultdict

from prometheus_client import generate_latest

from mtasts.metricset import MetricSet

# seconds; prometheus-client adds +Inf
BUCKETS = (0.0005, 0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 30.0)

ANSWER_KINDS = (
    "ok",
    "notfound",
    "temp",
    "timeout",
    "perm",
    "answer-cache",
    "notfound-key",
    "error",
    "bad-request",
    "bad-framing",
)
SOURCES = ("cache", "fetched")


class Metrics:
    """What one daemon did since it started, on its own :class:`CollectorRegistry`."""

    __slots__ = (
        "_answer",
        "_answers",
        "_connections",
        "_failures",
        "_fast_hits_folded",
        "_latency",
        "_lookup",
        "_lookups",
        "fast_hits",
        "memory_answers",
        "registry",
    )

    def __init__(self) -> None:
        m = MetricSet("mtasts_socketmap_")
        self.registry = m.registry
        self._answers = m.counter("answers", "Socketmap answers by kind.", "kind")
        self._answer = {kind: self._answers.labels(kind) for kind in ANSWER_KINDS}
        self._lookups = lookups = m.counter(
            "policy_lookups",
            "Resolver lookups behind socketmap answers, by source (cache hit or fetched).",
            "source",
        )
        self._lookup = {source: lookups.labels(source) for source in SOURCES}
        self._failures = m.counter(
            "policy_failures",
            "Lookups that carried a policy failure, by TLS-RPT result type; applied=none: "
            "no policy could be used, applied=cached: a cached policy was applied.",
            "result_type",
            "applied",
        )
        self._connections = m.counter("connections", "Client connections accepted.")
        self._latency = m.histogram(
            "lookup_seconds", "Time to answer a request that needed a lookup.", buckets=BUCKETS
        )
        #: reused answers given inside data_received; folded into answers_total on scrape
        self.fast_hits = 0
        self._fast_hits_folded = 0
        #: answers from memory by reply status (OK, NOTFOUND, ...); folded on scrape
        self.memory_answers: defaultdict[str, int] = defaultdict(int)

    def count_answer(self, kind: str, seconds: float) -> None:
        """One answer of ``kind`` (ok, notfound, temp, ...); ``seconds`` > 0 if it looked up."""
        child = self._answer.get(kind)
        if child is None:
            child = self._answer[kind] = self._answers.labels(kind)
        child.inc()
        if seconds > 0.0:
            self._latency.observe(seconds)

    def count_lookup(self, source: str, result_type: str | None, refresh_error: str | None) -> None:
        """One resolver lookup: where it came from and the failure it carried, if any."""
        child = self._lookup.get(source)
        if child is None:
            child = self._lookup[source] = self._lookups.labels(source)
        child.inc()
        if result_type is not None:
            self._failures.labels(result_type, "none").inc()
        elif refresh_error is not None:
            self._failures.labels(refresh_error, "cached").inc()

    def count_connection(self) -> None:
        self._connections.inc()

    def render(self) -> bytes:
        """The Prometheus text exposition (``generate_latest``) of this daemon's registry."""
        if self.fast_hits != self._fast_hits_folded:
            self._answer["answer-cache"].inc(self.fast_hits - self._fast_hits_folded)
            self._fast_hits_folded = self.fast_hits
        if self.memory_answers:
            folded, self.memory_answers = self.memory_answers, defaultdict(int)
            for status, n in folded.items():
                kind = status.lower()
                child = self._answer.get(kind) or self._answers.labels(kind)
                child.inc(n)
                self._lookup["cache"].inc(n)
        return generate_latest(self.registry)
