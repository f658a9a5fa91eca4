"""Daemon counters, exposed in the Prometheus text format (version 0.0.4).

prometheus-client is not a dependency yet; these few counters and one latency histogram
are rendered by hand. Counting is a dict increment on the hot path.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# seconds; the last bucket is +Inf
BUCKETS = (0.0005, 0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0, 30.0)


@dataclass(slots=True)
class Metrics:
    """What the daemon did since it started."""

    answers: dict[str, int] = field(default_factory=dict)
    connections: int = 0
    #: answers given from the rendered-answer cache on the hot path (no parsing)
    fast_hits: int = 0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    latency_sum: float = 0.0

    def count_answer(self, kind: str, seconds: float) -> None:
        """One answer of ``kind`` (ok, notfound, temp, timeout, answer-cache, ...)."""
        self.answers[kind] = self.answers.get(kind, 0) + 1
        if seconds > 0.0:
            self.latency_buckets[bisect_left(BUCKETS, seconds)] += 1
            self.latency_sum += seconds

    def render(self) -> str:
        """The Prometheus text exposition of every counter."""
        lines = [
            "# HELP mtasts_socketmap_answers_total Socketmap answers by kind.",
            "# TYPE mtasts_socketmap_answers_total counter",
        ]
        answers = dict(self.answers)
        answers["answer-cache"] = answers.get("answer-cache", 0) + self.fast_hits
        for kind in sorted(answers):
            lines.append(f'mtasts_socketmap_answers_total{{kind="{kind}"}} {answers[kind]}')
        lines += [
            "# HELP mtasts_socketmap_connections_total Client connections accepted.",
            "# TYPE mtasts_socketmap_connections_total counter",
            f"mtasts_socketmap_connections_total {self.connections}",
            "# HELP mtasts_socketmap_lookup_seconds Time to answer a request that needed a lookup.",
            "# TYPE mtasts_socketmap_lookup_seconds histogram",
        ]
        running = 0
        for bound, count in zip((*BUCKETS, float("inf")), self.latency_buckets, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'mtasts_socketmap_lookup_seconds_bucket{{le="{le}"}} {running}')
        lines.append(f"mtasts_socketmap_lookup_seconds_sum {self.latency_sum}")
        lines.append(f"mtasts_socketmap_lookup_seconds_count {running}")
        return "\n".join(lines) + "\n"
