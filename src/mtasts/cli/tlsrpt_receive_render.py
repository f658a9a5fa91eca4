"""Terminal output of ``tlsrpt received`` (the JSON is the summaries' own to_json)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table

from mtasts.cli.render import console
from mtasts.tlsrpt.receive.summary import DaySummary, ReceivedReport

_TOP = 5  # entries shown per breakdown


def _top(counts: dict[str, int]) -> str:
    items = list(counts.items())
    text = ", ".join(f"{k} {n}" for k, n in items[:_TOP])
    if len(items) > _TOP:
        text += f", +{len(items) - _TOP} more"
    return text or "-"


def render_days(days: list[DaySummary]) -> None:
    out = console(markup=False)  # every field was written by a reporting organization
    if not days:
        out.print("no reports received in this period", highlight=False)
        return
    table = Table("day", "domain", "reports", "ok", "failed", "failures by type", "by org")
    for d in days:
        table.add_row(
            d.day,
            d.domain,
            str(d.reports),
            str(d.sessions.successful),
            str(d.sessions.failed),
            _top(d.failures_by_result_type),
            _top(d.failures_by_organization),
        )
    out.print(table)
    for d in days:
        if d.failures_by_result_type:
            out.print(f"{d.day} {d.domain}:", highlight=False)
            out.print(f"  receiving MX: {_top(d.failures_by_receiving_mx)}", highlight=False)
            out.print(f"  sending IP:   {_top(d.failures_by_sending_ip)}", highlight=False)


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def render_reports(reports: list[ReceivedReport]) -> None:
    out = console(markup=False)  # every field was written by a reporting organization
    if not reports:
        out.print("no reports", highlight=False)
        return
    table = Table(
        "id", "day", "organization", "report-id", "policies", "ok", "failed", "DKIM", "arrived"
    )
    for r in reports:
        policies = "; ".join(f"{p['policy_type']} {p['policy_domain']}" for p in r.policies)
        dkim = r.dkim["result"]
        if r.dkim.get("domain"):
            dkim += f" d={r.dkim['domain']} s={r.dkim['selector']}"
        arrived = ", ".join(
            sorted({f"{a['channel']} {_when(int(a['received_at']))}" for a in r.arrivals})
        )
        table.add_row(
            str(r.pk),
            r.day,
            r.organization,
            r.report_id,
            policies,
            str(r.successful),
            str(r.failed),
            dkim,
            arrived,
        )
    out.print(table)
    for r in reports:
        if r.warnings or r.status_reason:
            out.print(f"{r.pk} {r.organization} {r.report_id}:", highlight=False)
            if r.status_reason:
                out.print(
                    f"  quarantined: {r.status_reason} (mtasts tlsrpt release {r.pk})",
                    highlight=False,
                )
            for w in r.warnings:
                out.print(f"  repaired: {w['code']}: {w['message']}", highlight=False)
