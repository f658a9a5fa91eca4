"""Reads of TLS-RPT receiving: day summaries per policy domain and the report list.

Every question is bounded by policy domain and day, answered from the (domain, day)
indices (or the reports' day index when no domain is given); only stored reports count,
quarantined ones are listed on request.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import orjson
from sqlalchemy import and_, func, literal, select

from mtasts.store.engine import Database
from mtasts.store.received_schema import arrivals, report_failures, report_policies, reports
from mtasts.tlsrpt.receive.summary import DaySummary, ReceivedReport, summarize

_CHUNK = 400


def _range(column: Any, since: date | None, until: date | None) -> list[Any]:
    out = []
    if since is not None:
        out.append(column >= since.isoformat())
    if until is not None:
        out.append(column <= until.isoformat())
    return out


async def day_summaries(
    db: Database,
    *,
    domain: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[DaySummary]:
    """Per policy domain and UTC day: sessions, and failures by result type, reporting
    organisation, receiving MX (host and IP) and sending MTA IP."""
    p, f, r = report_policies, report_failures, reports
    where_p = [*_range(p.c.day, since, until), r.c.status == "stored"]
    where_f = [*_range(f.c.day, since, until), r.c.status == "stored"]
    if domain is not None:
        name = domain.strip().rstrip(".").lower()
        where_p.append(p.c.policy_domain == name)
        where_f.append(f.c.policy_domain == name)
    pq = (
        select(
            p.c.policy_domain,
            p.c.day,
            p.c.report_pk,
            p.c.organization,
            p.c.policy_type,
            func.sum(p.c.successful).label("successful"),
            func.sum(p.c.failed).label("failed"),
        )
        .join(r, r.c.pk == p.c.report_pk)
        .where(and_(*where_p))
        .group_by(p.c.policy_domain, p.c.day, p.c.report_pk, p.c.organization, p.c.policy_type)
    )
    dims = (
        f.c.policy_domain,
        f.c.day,
        f.c.organization,
        f.c.result_type,
        f.c.receiving_mx_hostname,
        f.c.receiving_ip,
        f.c.sending_mta_ip,
    )
    fq = (
        select(*dims, func.sum(f.c.failed_session_count).label("failed"))
        .join(r, r.c.pk == f.c.report_pk)
        .where(and_(*where_f))
        .group_by(*dims)
    )
    return summarize(await db.fetch(pq), await db.fetch(fq))


async def report_list(
    db: Database,
    *,
    domain: str | None = None,
    since: date | None = None,
    until: date | None = None,
    quarantined: bool = False,
    limit: int = 10_000,
) -> list[ReceivedReport]:
    """The reports (stored, or quarantined ones with ``quarantined``), oldest first, with
    their policies, DKIM verdict, the reader's repairs and every arrival."""
    status = "quarantined" if quarantined else "stored"
    if domain is not None:
        name = domain.strip().rstrip(".").lower()
        pq = (
            select(report_policies.c.report_pk)
            .where(
                and_(
                    report_policies.c.policy_domain == name,
                    *_range(report_policies.c.day, since, until),
                )
            )
            .distinct()
        )
        pks = sorted(int(x["report_pk"]) for x in await db.fetch(pq))
        rows: list[dict[str, Any]] = []
        for i in range(0, len(pks), _CHUNK):
            part = [literal(pk) for pk in pks[i : i + _CHUNK]]
            rows += await db.fetch(
                select(reports).where(and_(reports.c.pk.in_(part), reports.c.status == status))
            )
    else:
        rows = await db.fetch(
            select(reports).where(
                and_(reports.c.status == status, *_range(reports.c.day, since, until))
            )
        )
    rows.sort(key=lambda x: (x["day"], x["range_start"], x["pk"]))
    rows = rows[:limit]
    policies: dict[int, list[dict[str, Any]]] = defaultdict(list)
    seen: dict[int, list[dict[str, Any]]] = defaultdict(list)
    pks = [int(x["pk"]) for x in rows]
    for i in range(0, len(pks), _CHUNK):
        part = [literal(pk) for pk in pks[i : i + _CHUNK]]
        for x in await db.fetch(
            select(report_policies)
            .where(report_policies.c.report_pk.in_(part))
            .order_by(report_policies.c.report_pk, report_policies.c.idx)
        ):
            policies[int(x["report_pk"])].append(
                {
                    "policy_type": x["policy_type"],
                    "policy_domain": x["policy_domain"],
                    "policy_string": orjson.loads(x["policy_string"]),
                    "mx_host": orjson.loads(x["mx_host"]),
                    "successful": int(x["successful"]),
                    "failed": int(x["failed"]),
                }
            )
        cols = (
            arrivals.c.report_pk,
            arrivals.c.received_at,
            arrivals.c.channel,
            arrivals.c.source,
            arrivals.c.disposition,
            arrivals.c.dkim_result,
        )
        for x in await db.fetch(
            select(*cols).where(arrivals.c.report_pk.in_(part)).order_by(arrivals.c.pk)
        ):
            seen[int(x["report_pk"])].append({k: x[k] for k in x if k != "report_pk"})
    return [
        ReceivedReport(
            pk=int(x["pk"]),
            organization=x["organization"],
            report_id=x["report_id"],
            contact_info=x["contact_info"],
            range_start=int(x["range_start"]),
            range_end=int(x["range_end"]),
            day=x["day"],
            status=x["status"],
            status_reason=x["status_reason"],
            successful=int(x["successful"]),
            failed=int(x["failed"]),
            policies=tuple(policies[int(x["pk"])]),
            dkim={
                "result": x["dkim_result"],
                "domain": x["dkim_domain"],
                "selector": x["dkim_selector"],
                "reason": x["dkim_reason"],
                "aligned": bool(x["dkim_aligned"]),
            },
            warnings=tuple(orjson.loads(x["warnings"])),
            arrivals=tuple(seen[int(x["pk"])]),
        )
        for x in rows
    ]


async def arrival_counts(db: Database, since_ts: int | None = None) -> dict[tuple[str, str], int]:
    """Arrivals by (channel, disposition), e.g. for a status line or metrics at start."""
    q = select(arrivals.c.channel, arrivals.c.disposition, func.count().label("n")).group_by(
        arrivals.c.channel, arrivals.c.disposition
    )
    if since_ts is not None:
        q = q.where(arrivals.c.received_at >= since_ts)
    return {(x["channel"], x["disposition"]): int(x["n"]) for x in await db.fetch(q)}
