"""The metrics: a scrape shows exactly the documented names, and the Grafana dashboard
in contrib/ parses and asks only for metrics that are exported."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mtasts.alerts.metrics import (
    NAMES,
    DomainFigures,
    Figures,
    ReceivedCollector,
    registry,
    render,
)

DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "mtasts-tlsrpt.json"
# PromQL words that look like metric names but are functions, keywords or labels
_PROMQL = {"sum", "by", "increase", "time", "rate", "without", "on"}


def _scrape(fig: Figures) -> dict[str, list[tuple[dict[str, str], float]]]:
    collector = ReceivedCollector()
    collector.figures = fig
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(render(registry(collector)).decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def test_a_scrape_has_exactly_the_documented_names() -> None:
    f = DomainFigures(900, 100, 3, day_successful=90, day_failed=10, last_stored=1_800_000_000)
    f.by_type.update({"certificate-expired": 60, "other": 40})
    fig = Figures(
        {"a.example": f},
        {("failure-rate", "critical"): 1},
        {"sent": 2, "pending": 1},
        last_evaluation=1_800_000_100,
        evaluation_failures=3,
    )
    got = _scrape(fig)
    assert {n for n in got if not n.endswith("_created")} == NAMES
    ratio = got["mtasts_tlsrpt_received_day_failure_ratio"]
    assert ratio == [({"domain": "a.example"}, 0.1)]
    assert ({"domain": "a.example", "result_type": "certificate-expired"}, 60.0) in got[
        "mtasts_tlsrpt_received_failures_total"
    ]
    assert ({"status": "failed"}, 0.0) in got["mtasts_alerts_notifications"]


def test_an_empty_scrape_still_works() -> None:
    got = _scrape(Figures())
    assert got["mtasts_alerts_evaluation_failures_total"] == [({}, 0.0)]
    assert "mtasts_tlsrpt_received_sessions_total" not in got


def _exprs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "definition") and isinstance(v, str)]
        q = node.get("query")
        if isinstance(q, str):
            found.append(q)
        for v in node.values():
            found += _exprs(v)
        return found
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_the_grafana_dashboard_uses_only_exported_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"]
    assert dashboard["panels"]
    exprs = _exprs(dashboard)
    assert len(exprs) >= len(dashboard["panels"])
    used = set()
    for expr in exprs:
        for name in re.findall(r"\b(mtasts_[a-z_]+)\b", expr):
            used.add(name)
        # nothing else that could be a metric: only functions, keywords and labels remain
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\bmtasts_[a-z_]+\b|\"[^\"]*\"|\$\w+", " ", expr)
        words = set(re.findall(r"[a-z_]+", bare)) - _PROMQL
        assert words <= {"domain", "outcome", "result_type", "severity", "label_values"}, expr
    assert used <= NAMES, used - NAMES
    # every panel has a datasource input, ids are unique, and the panels do not overlap
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, p["title"]
                cells.add((x, y))
        assert all(t["datasource"]["uid"] == "${DS_PROMETHEUS}" for t in p["targets"])
