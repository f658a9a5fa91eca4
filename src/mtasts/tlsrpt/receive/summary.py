"""What the received reports say, per policy domain and UTC day (``tlsrpt received``).

Pure: rows in (from :mod:`mtasts.tlsrpt.receive.received_query`), values out.

RFC 8460 §4.4 leaves open how a sender reports one session checked against two policies:
Microsoft sends an ``sts`` and a ``tlsa`` entry for the same sessions. So the sessions
of one report for one domain are the largest of its per-policy-type sums (two ``sts``
entries, for a policy that changed during the day, are added; ``sts`` and ``tlsa`` are
not). Failure breakdowns add ``failed-session-count`` over the failure details, which
RFC 8460 §4.3 lets overlap: they answer "how often", not "how many sessions".
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mtasts.rfc3339 import utc_text


@dataclass(frozen=True, slots=True)
class Counted:
    """Sessions that succeeded and failed, as one sender or all senders reported them."""

    successful: int = 0
    failed: int = 0

    def __add__(self, other: Counted) -> Counted:
        return Counted(self.successful + other.successful, self.failed + other.failed)

    def to_json(self) -> dict[str, int]:
        return {"successful": self.successful, "failed": self.failed}


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One policy domain on one UTC day."""

    domain: str
    day: str  # YYYY-MM-DD
    sessions: Counted
    reports: int
    by_organization: dict[str, Counted] = field(default_factory=dict)
    failures_by_result_type: dict[str, int] = field(default_factory=dict)
    failures_by_organization: dict[str, int] = field(default_factory=dict)
    failures_by_receiving_mx: dict[str, int] = field(default_factory=dict)  # "host ip"
    failures_by_sending_ip: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "day": self.day,
            "reports": self.reports,
            **self.sessions.to_json(),
            "by_organization": {k: v.to_json() for k, v in self.by_organization.items()},
            "failures": {
                "by_result_type": self.failures_by_result_type,
                "by_organization": self.failures_by_organization,
                "by_receiving_mx": self.failures_by_receiving_mx,
                "by_sending_ip": self.failures_by_sending_ip,
            },
        }


def mx_label(hostname: str | None, ip: str | None) -> str:
    """One receiving MX as shown: ``host (ip)``; '-' for what the sender left out."""
    return f"{hostname or '-'} ({ip or '-'})"


def _sorted(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def summarize(
    policy_rows: Iterable[Mapping[str, Any]], failure_rows: Iterable[Mapping[str, Any]]
) -> list[DaySummary]:
    """Day summaries, ordered by day then domain.

    ``policy_rows``: policy_domain, day, report_pk, organization, policy_type,
    successful, failed (sums per report and policy type). ``failure_rows``:
    policy_domain, day, organization, result_type, receiving_mx_hostname, receiving_ip,
    sending_mta_ip, failed (sums)."""
    per_type: dict[tuple[str, str, int], dict[str, Counted]] = defaultdict(dict)
    org_of: dict[int, str] = {}
    for r in policy_rows:
        key = (r["policy_domain"], r["day"], int(r["report_pk"]))
        kinds = per_type[key]
        kinds[r["policy_type"]] = kinds.get(r["policy_type"], Counted()) + Counted(
            int(r["successful"]), int(r["failed"])
        )
        org_of[key[2]] = r["organization"]
    sessions: dict[tuple[str, str], Counted] = defaultdict(Counted)
    reports: dict[tuple[str, str], int] = defaultdict(int)
    orgs: dict[tuple[str, str], dict[str, Counted]] = defaultdict(dict)
    for (domain, day, pk), kinds in per_type.items():
        best = max(kinds.values(), key=lambda c: (c.successful + c.failed, c.failed))
        sessions[domain, day] += best
        reports[domain, day] += 1
        by_org = orgs[domain, day]
        by_org[org_of[pk]] = by_org.get(org_of[pk], Counted()) + best
    breakdown: dict[tuple[str, str], list[dict[str, int]]] = defaultdict(
        lambda: [defaultdict(int) for _ in range(4)]
    )
    for f in failure_rows:
        key2 = (f["policy_domain"], f["day"])
        n = int(f["failed"])
        by_type, by_org2, by_mx, by_ip = breakdown[key2]
        by_type[f["result_type"]] += n
        by_org2[f["organization"]] += n
        by_mx[mx_label(f["receiving_mx_hostname"], f["receiving_ip"])] += n
        by_ip[f["sending_mta_ip"] or "-"] += n
    out = []
    for key3 in sorted(set(sessions) | set(breakdown), key=lambda k: (k[1], k[0])):
        parts = breakdown.get(key3) or [{} for _ in range(4)]
        out.append(
            DaySummary(
                domain=key3[0],
                day=key3[1],
                sessions=sessions.get(key3, Counted()),
                reports=reports.get(key3, 0),
                by_organization=dict(sorted(orgs.get(key3, {}).items())),
                failures_by_result_type=_sorted(parts[0]),
                failures_by_organization=_sorted(parts[1]),
                failures_by_receiving_mx=_sorted(parts[2]),
                failures_by_sending_ip=_sorted(parts[3]),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ReceivedReport:
    """One stored report as ``tlsrpt received --reports`` lists it."""

    pk: int
    organization: str
    report_id: str
    contact_info: str
    range_start: int  # Unix seconds
    range_end: int
    day: str
    status: str  # stored | quarantined
    status_reason: str | None
    successful: int
    failed: int
    policies: tuple[dict[str, Any], ...]
    dkim: dict[str, Any]
    warnings: tuple[dict[str, str], ...]
    arrivals: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "pk": self.pk,
            "organization": self.organization,
            "report_id": self.report_id,
            "contact_info": self.contact_info,
            "range_start": utc_text(self.range_start),
            "range_end": utc_text(self.range_end),
            "day": self.day,
            "status": self.status,
            "status_reason": self.status_reason,
            "successful": self.successful,
            "failed": self.failed,
            "policies": list(self.policies),
            "dkim": self.dkim,
            "warnings": list(self.warnings),
            "arrivals": [
                {**a, "received_at": utc_text(a["received_at"])} if "received_at" in a else a
                for a in self.arrivals
            ],
        }
