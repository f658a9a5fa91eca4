"""Read what the received TLS-RPT reports say about one domain over a window of days, for
``mtasts advise``. Read-only; the tables are :mod:`mtasts.store.received_schema`'s.

Two grouped queries on the (policy domain, day) indices, stored reports only: the
per-report policy rows (sessions by policy type, the policy string for its mode) and the
failure details summed by organisation, day, policy type, result type, receiving MX and
reason code. The pure :func:`mtasts.monitor.evidence.evidence_from_rows` does the rest.

I/O module.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import orjson
from sqlalchemy import and_, func, select

from mtasts.monitor.evidence import Evidence, evidence_from_rows
from mtasts.names import normalize_domain
from mtasts.store.engine import Database
from mtasts.store.received_schema import report_failures, report_policies, reports

MAX_POLICY_ROWS = 200_000  # a year of 500 reporters a day is far below this
# Failure groups read at most, the largest first: reporters choose the MX names and
# reason codes they report, so the number of distinct groups is theirs to inflate.
MAX_FAILURE_GROUPS = 10_000


def _strings(raw: object) -> list[str]:
    try:
        value = orjson.loads(str(raw))
    except orjson.JSONDecodeError:
        return []
    if isinstance(value, str):  # Microsoft's TLSA policy-string: one string
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


async def read_evidence(db: Database, domain: str, since: date, until: date) -> Evidence:
    """The evidence for ``domain`` from the reports whose day is in [since, until]."""
    name = normalize_domain(domain)
    p, f, r = report_policies, report_failures, reports
    pq = (
        select(
            p.c.report_pk,
            p.c.organization,
            p.c.day,
            p.c.policy_type,
            p.c.policy_string,
            p.c.successful,
            p.c.failed,
        )
        .join(r, r.c.pk == p.c.report_pk)
        .where(
            and_(
                p.c.policy_domain == name,
                p.c.day >= since.isoformat(),
                p.c.day <= until.isoformat(),
                r.c.status == "stored",
            )
        )
        .limit(MAX_POLICY_ROWS)
    )
    policy_rows = [
        {**row, "policy_string": _strings(row["policy_string"])} for row in await db.fetch(pq)
    ]
    dims = (
        f.c.organization,
        f.c.day,
        p.c.policy_type,
        f.c.result_type,
        f.c.receiving_mx_hostname,
        f.c.failure_reason_code,
    )
    total = func.sum(f.c.failed_session_count)
    fq = (
        select(*dims, total.label("failed"))
        .join(r, r.c.pk == f.c.report_pk)
        .join(p, and_(p.c.report_pk == f.c.report_pk, p.c.idx == f.c.policy_idx))
        .where(
            and_(
                f.c.policy_domain == name,
                f.c.day >= since.isoformat(),
                f.c.day <= until.isoformat(),
                r.c.status == "stored",
            )
        )
        .group_by(*dims)
        .order_by(total.desc())
        .limit(MAX_FAILURE_GROUPS + 1)
    )
    failure_rows = await db.fetch(fq)
    cut = len(failure_rows) > MAX_FAILURE_GROUPS
    evidence = evidence_from_rows(
        name, since, until, policy_rows, failure_rows[:MAX_FAILURE_GROUPS]
    )
    return replace(evidence, truncated=cut)
