"""Read-only questions the alert rules and metrics ask the receiving tables.

I/O. Only stored reports count (quarantined ones never raise an alert). Every question
is bounded by day and answered from the (domain, day) indices, except
:func:`last_days` and :func:`change_marker`, which are one aggregate each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Table, and_, func, literal, select

from mtasts.store.engine import Database
from mtasts.store.received_schema import report_failures, report_policies, reports

_CHUNK = 400


def _domains(column: Any, domains: Iterable[str] | None) -> list[Any]:
    """The WHERE terms for ``domains`` (None: every domain). No domain matches nothing:
    an empty IN list would reach the SQL as SQLAlchemy's unrendered placeholder."""
    if domains is None:
        return []
    names = sorted(domains)
    return [column.in_([literal(d) for d in names]) if names else literal(False)]


async def domains_since(db: Database, since: date) -> set[str]:
    """Every policy domain with a stored report on ``since`` or later."""
    p, r = report_policies, reports
    q = (
        select(p.c.policy_domain)
        .join(r, r.c.pk == p.c.report_pk)
        .where(and_(p.c.day >= since.isoformat(), r.c.status == "stored"))
        .distinct()
    )
    return {row["policy_domain"] for row in await db.fetch(q)}


async def _days_by(
    db: Database, table: Table, column: str, since: date, domains: Iterable[str] | None
) -> dict[str, dict[str, frozenset[str]]]:
    """domain -> value of ``column`` -> the days a stored report carried it (from ``since``)."""
    r = reports
    q = (
        select(table.c.policy_domain, table.c[column], table.c.day)
        .join(r, r.c.pk == table.c.report_pk)
        .where(
            and_(
                table.c.day >= since.isoformat(),
                r.c.status == "stored",
                *_domains(table.c.policy_domain, domains),
            )
        )
        .distinct()
    )
    out: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in await db.fetch(q):
        out[row["policy_domain"]][row[column]].add(row["day"])
    return {d: {v: frozenset(days) for v, days in by.items()} for d, by in out.items()}


async def type_days(
    db: Database, since: date, domains: Iterable[str] | None = None
) -> dict[str, dict[str, frozenset[str]]]:
    """domain -> failure result type -> the days it was reported (from ``since``)."""
    return await _days_by(db, report_failures, "result_type", since, domains)


async def reporter_days(
    db: Database, since: date, domains: Iterable[str] | None = None
) -> dict[str, dict[str, frozenset[str]]]:
    """domain -> reporting organisation -> the days it reported (from ``since``)."""
    return await _days_by(db, report_policies, "organization", since, domains)


async def last_days(db: Database, domains: Iterable[str]) -> dict[str, str]:
    """domain -> the newest day with a stored report (domains never reported: absent)."""
    p, r = report_policies, reports
    names = sorted(set(domains))
    out: dict[str, str] = {}
    for i in range(0, len(names), _CHUNK):
        part = [literal(d) for d in names[i : i + _CHUNK]]
        q = (
            select(p.c.policy_domain, func.max(p.c.day).label("day"))
            .join(r, r.c.pk == p.c.report_pk)
            .where(and_(p.c.policy_domain.in_(part), r.c.status == "stored"))
            .group_by(p.c.policy_domain)
        )
        out.update({row["policy_domain"]: row["day"] for row in await db.fetch(q)})
    return out


async def sts_policies(
    db: Database, since: date, domains: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """The sts policy-strings reported from ``since``: policy_domain, organization, day,
    policy_string (a list of lines)."""
    p, r = report_policies, reports
    q = (
        select(p.c.policy_domain, p.c.organization, p.c.day, p.c.policy_string)
        .join(r, r.c.pk == p.c.report_pk)
        .where(
            and_(
                p.c.day >= since.isoformat(),
                p.c.policy_type == "sts",
                r.c.status == "stored",
                *_domains(p.c.policy_domain, domains),
            )
        )
        .distinct()
    )
    out = []
    for row in await db.fetch(q):
        try:
            lines = orjson.loads(row["policy_string"])
        except orjson.JSONDecodeError:
            lines = []
        out.append({**row, "policy_string": lines if isinstance(lines, list) else []})
    return out


async def last_stored(db: Database) -> dict[str, int]:
    """domain -> when its newest report was stored (Unix seconds)."""
    p, r = report_policies, reports
    q = (
        select(p.c.policy_domain, func.max(r.c.stored_at).label("at"))
        .join(r, r.c.pk == p.c.report_pk)
        .where(r.c.status == "stored")
        .group_by(p.c.policy_domain)
    )
    return {row["policy_domain"]: int(row["at"]) for row in await db.fetch(q)}


async def change_marker(db: Database) -> tuple[int, int]:
    """(the newest report's pk, the number of reports): changes when reports are stored,
    reprocessed or pruned; cheap (the primary key)."""
    q = select(func.max(reports.c.pk).label("pk"), func.count().label("n")).select_from(reports)
    row = (await db.fetch(q))[0]
    return int(row["pk"] or 0), int(row["n"] or 0)
