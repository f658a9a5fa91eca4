"""The daemon's Prometheus metrics: what each series counts, on a registry of its own."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mtasts.postfix.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition text, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_answers_are_counted_by_kind_and_lookups_timed() -> None:
    m = Metrics()
    m.count_answer("ok", 0.002)
    m.count_answer("ok", 0.0003)
    m.count_answer("notfound-key", 0.0)  # no lookup: not in the latency histogram
    got = samples(m)
    assert got[("mtasts_socketmap_answers_total", (("kind", "ok"),))] == 2
    assert got[("mtasts_socketmap_answers_total", (("kind", "notfound-key"),))] == 1
    assert got[("mtasts_socketmap_answers_total", (("kind", "temp"),))] == 0  # pre-bound
    assert got[("mtasts_socketmap_lookup_seconds_count", ())] == 2
    assert got[("mtasts_socketmap_lookup_seconds_bucket", (("le", "0.0005"),))] == 1
    assert got[("mtasts_socketmap_lookup_seconds_bucket", (("le", "0.005"),))] == 2


def test_hot_path_hits_are_folded_into_answer_cache_on_every_scrape() -> None:
    m = Metrics()
    m.count_answer("answer-cache", 0.0)
    m.fast_hits += 3
    key = ("mtasts_socketmap_answers_total", (("kind", "answer-cache"),))
    assert samples(m)[key] == 4
    assert samples(m)[key] == 4  # a second scrape does not add them again
    m.fast_hits += 1
    assert samples(m)[key] == 5


def test_lookups_by_source_and_failures_by_result_type() -> None:
    m = Metrics()
    m.count_lookup("cache", None, None)
    m.count_lookup("fetched", "sts-policy-fetch-error", None)
    m.count_lookup("cache", None, "sts-webpki-invalid")
    m.count_connection()
    got = samples(m)
    assert got[("mtasts_socketmap_policy_lookups_total", (("source", "cache"),))] == 2
    assert got[("mtasts_socketmap_policy_lookups_total", (("source", "fetched"),))] == 1
    failures = "mtasts_socketmap_policy_failures_total"
    fetch_error = (("applied", "none"), ("result_type", "sts-policy-fetch-error"))
    assert got[(failures, fetch_error)] == 1
    assert got[(failures, (("applied", "cached"), ("result_type", "sts-webpki-invalid")))] == 1
    assert got[("mtasts_socketmap_connections_total", ())] == 1


def test_each_daemon_has_its_own_registry() -> None:
    """Two servers in one process (tests, embedding) do not share or clash on series."""
    a, b = Metrics(), Metrics()
    a.count_answer("ok", 0.0)
    assert samples(a)[("mtasts_socketmap_answers_total", (("kind", "ok"),))] == 1
    assert samples(b)[("mtasts_socketmap_answers_total", (("kind", "ok"),))] == 0
