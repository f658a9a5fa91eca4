"""The dashboard's reads of the receiving store: read-only, bounded by domain and day.

Every question is answered from the (policy domain, day) indices of the policy and
failure tables (or the reports' day index), grouped in SQL, with only the stored
reports counted (quarantined ones only where asked for). Who may see what is decided by
the caller (:mod:`mtasts.web.access`) and passed in as a set of domains (``None``: all).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, and_, cast, exists, func, literal, not_, select, union_all
from sqlalchemy.sql import ColumnElement

from mtasts.store.engine import Database, Row
from mtasts.store.monitor_schema import monitor_checks
from mtasts.store.received_schema import (
    arrivals,
    raw_inputs,
    report_failures,
    report_policies,
    reports,
)

p, f, r = report_policies, report_failures, reports

#: The failure dimensions a domain page filters on: URL parameter -> column.
FAILURE_FILTERS = {
    "org": f.c.organization,
    "result": f.c.result_type,
    "mx": f.c.receiving_mx_hostname,
    "sender": f.c.sending_mta_ip,
}


@dataclass(frozen=True, slots=True)
class Filters:
    """A domain page's filters ('-' matches what a sender left out)."""

    org: str | None = None
    result: str | None = None
    mx: str | None = None
    sender: str | None = None

    def items(self) -> list[tuple[str, str]]:
        return [(k, v) for k in FAILURE_FILTERS if (v := getattr(self, k)) is not None]

    @property
    def on_failures(self) -> bool:
        """Whether a filter narrows failures beyond the reporting organisation."""
        return any(getattr(self, k) is not None for k in ("result", "mx", "sender"))


def _eq(column: Any, value: str) -> ColumnElement[bool]:
    out: ColumnElement[bool] = column.is_(None) if value == "-" else column == value
    return out


def _days(column: Any, since: date | None, until: date | None) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(column >= since.isoformat())
    if until is not None:
        out.append(column <= until.isoformat())
    return out


def _domains(column: Any, domains: Collection[str] | None) -> list[ColumnElement[bool]]:
    if domains is None:
        return []
    return [column.in_([literal(d) for d in sorted(domains)]) if domains else literal(False)]


async def last_day(db: Database, domain: str) -> str | None:
    """One domain's newest day with a stored report (the index, read backwards)."""
    q = (
        select(p.c.day)
        .join(r, r.c.pk == p.c.report_pk)
        .where(and_(p.c.policy_domain == domain, r.c.status == "stored"))
        .order_by(p.c.day.desc())
        .limit(1)
    )
    rows = await db.fetch(q)
    return rows[0]["day"] if rows else None


async def domain_last_days(db: Database, domains: Collection[str] | None) -> dict[str, str]:
    """Every policy domain with stored reports (among ``domains``) -> its newest day."""
    q = (
        select(p.c.policy_domain, func.max(p.c.day).label("last"))
        .join(r, r.c.pk == p.c.report_pk)
        .where(and_(r.c.status == "stored", *_domains(p.c.policy_domain, domains)))
        .group_by(p.c.policy_domain)
    )
    return {x["policy_domain"]: x["last"] for x in await db.fetch(q)}


# Sessions of one report and policy type are below 2^31 (a sender would need 25,000
# sessions a second all day), so (total, failed) packs into one BIGINT that MAX compares
# as the pair: the report's largest type, more failures first on a tie.
_PACK = 2**32


def _best_per_report(
    domains: Collection[str] | None, since: date, until: date, org: str | None
) -> Any:
    """One row per (domain, day, report, organisation): ``packed`` = total * 2^32 +
    failed of its largest policy type.

    As :func:`mtasts.tlsrpt.receive.summary.summarize` counts them (a report's ``sts``
    and ``tlsa`` entries describe the same sessions), but in SQL, so a year of reports
    never leaves the database row by row (two GROUP BYs: a window function ranking the
    types cost 1.6x more on SQLite)."""
    where = [
        r.c.status == "stored",
        *_domains(p.c.policy_domain, domains),
        *_days(p.c.day, since, until),
    ]
    if org is not None:
        where.append(p.c.organization == org)
    ok = cast(func.sum(p.c.successful), BigInteger)
    bad = cast(func.sum(p.c.failed), BigInteger)
    per_type = (
        select(
            p.c.policy_domain,
            p.c.day,
            p.c.report_pk,
            p.c.organization,
            ((ok + bad) * _PACK + bad).label("packed"),
        )
        .join(r, r.c.pk == p.c.report_pk)
        .where(and_(*where))
        .group_by(p.c.policy_domain, p.c.day, p.c.report_pk, p.c.organization, p.c.policy_type)
        .subquery("per_type")
    )
    t = per_type.c
    return select(
        t.policy_domain, t.day, t.report_pk, t.organization, func.max(t.packed).label("packed")
    ).group_by(t.policy_domain, t.day, t.report_pk, t.organization)


def _unpacked(best: Any) -> tuple[Any, Any]:
    """SUM(successful), SUM(failed) over the packed rows."""
    total = func.sum(best.c.packed // _PACK)  # integer division on both databases
    failed = func.sum(best.c.packed % _PACK)
    return (total - failed).label("successful"), failed.label("failed")


async def sessions_by_day(
    db: Database,
    domains: Collection[str] | None,
    since: date,
    until: date,
    org: str | None = None,
) -> list[Row]:
    """(policy_domain, day, successful, failed, reports)."""
    b = _best_per_report(domains, since, until, org).subquery("best")
    q = select(b.c.policy_domain, b.c.day, *_unpacked(b), func.count().label("reports")).group_by(
        b.c.policy_domain, b.c.day
    )
    return await db.fetch(q)


async def domain_sessions(
    db: Database, domain: str, since: date, until: date, org: str | None = None
) -> tuple[list[Row], list[Row]]:
    """One domain's sessions per day (policy_domain, day, successful, failed, reports)
    and per organisation (organization, successful, failed, reports), in one statement:
    the per-report sums are a CTE both groupings read (SQLite and PostgreSQL materialise
    a CTE used twice), so the year is read and ranked once."""
    b = _best_per_report([domain], since, until, org).cte("best")
    by_day = select(
        literal("day").label("kind"), b.c.day.label("key"), *_unpacked(b), func.count().label("n")
    ).group_by(b.c.day)
    by_org = select(
        literal("org").label("kind"),
        b.c.organization.label("key"),
        *_unpacked(b),
        func.count().label("n"),
    ).group_by(b.c.organization)
    days: list[Row] = []
    orgs: list[Row] = []
    for x in await db.fetch(union_all(by_day, by_org)):
        ok, bad, n = int(x["successful"]), int(x["failed"]), int(x["n"])
        if x["kind"] == "day":
            days.append(
                {
                    "policy_domain": domain,
                    "day": x["key"],
                    "successful": ok,
                    "failed": bad,
                    "reports": n,
                }
            )
        else:
            orgs.append({"organization": x["key"], "successful": ok, "failed": bad, "reports": n})
    return days, orgs


#: The failure breakdowns of a domain page: name -> the columns grouped.
BREAKDOWNS = {
    "result": (f.c.result_type,),
    "org": (f.c.organization,),
    "mx": (f.c.receiving_mx_hostname, f.c.receiving_ip),
    "sender": (f.c.sending_mta_ip,),
    "day_result": (f.c.day, f.c.result_type),
}


async def failure_breakdowns(
    db: Database,
    domain: str,
    since: date,
    until: date,
    filters: Filters = Filters(),
) -> dict[str, list[Row]]:
    """failed-session-count sums of one domain's failure details, the filters applied,
    grouped by each of :data:`BREAKDOWNS` (one indexed range scan each)."""
    where = [
        r.c.status == "stored",
        f.c.policy_domain == domain,
        *_days(f.c.day, since, until),
    ]
    for key, value in filters.items():
        where.append(_eq(FAILURE_FILTERS[key], value))
    out = {}
    for name, dims in BREAKDOWNS.items():
        q = (
            select(*dims, func.sum(f.c.failed_session_count).label("failed"))
            .join(r, r.c.pk == f.c.report_pk)
            .where(and_(*where))
            .group_by(*dims)
        )
        out[name] = await db.fetch(q)
    return out


async def result_type_totals(
    db: Database, domains: Collection[str] | None, since: date, until: date
) -> list[Row]:
    """failed-session-count per (domain, result type) over the days."""
    q = (
        select(
            f.c.policy_domain,
            f.c.result_type,
            func.sum(f.c.failed_session_count).label("failed"),
        )
        .join(r, r.c.pk == f.c.report_pk)
        .where(
            and_(
                r.c.status == "stored",
                *_domains(f.c.policy_domain, domains),
                *_days(f.c.day, since, until),
            )
        )
        .group_by(f.c.policy_domain, f.c.result_type)
    )
    return await db.fetch(q)


async def reported_policies(db: Database, domain: str, since: date, until: date) -> list[Row]:
    """The policies senders say they applied: per (type, policy-string, mx-host, org)."""
    q = (
        select(
            p.c.policy_type,
            p.c.policy_string,
            p.c.mx_host,
            p.c.organization,
            func.count().label("reports"),
            func.sum(p.c.successful).label("successful"),
            func.sum(p.c.failed).label("failed"),
            func.min(p.c.day).label("first_day"),
            func.max(p.c.day).label("last_day"),
        )
        .join(r, r.c.pk == p.c.report_pk)
        .where(
            and_(r.c.status == "stored", p.c.policy_domain == domain, *_days(p.c.day, since, until))
        )
        .group_by(p.c.policy_type, p.c.policy_string, p.c.mx_host, p.c.organization)
    )
    return await db.fetch(q)


async def reporters(db: Database, domain: str, since: date, until: date) -> list[Row]:
    """Per reporting organisation: first and last day and number of reports."""
    q = (
        select(
            p.c.organization,
            func.min(p.c.day).label("first_day"),
            func.max(p.c.day).label("last_day"),
            func.count(func.distinct(p.c.report_pk)).label("reports"),
        )
        .join(r, r.c.pk == p.c.report_pk)
        .where(
            and_(r.c.status == "stored", p.c.policy_domain == domain, *_days(p.c.day, since, until))
        )
        .group_by(p.c.organization)
    )
    return await db.fetch(q)


def _visible(domains: Collection[str] | None) -> list[ColumnElement[bool]]:
    """A report is visible when every policy domain in it is (RFC 8460 sends one report
    per policy domain; a report naming another tenant's domain stays hidden)."""
    if domains is None:
        return []
    allowed = [literal(d) for d in sorted(domains)] or [literal("")]
    p2 = report_policies.alias("p2")
    return [
        not_(exists().where(and_(p2.c.report_pk == r.c.pk, p2.c.policy_domain.not_in(allowed))))
    ]


_LIST_COLUMNS = (
    r.c.pk,
    r.c.organization,
    r.c.report_id,
    r.c.day,
    r.c.range_start,
    r.c.range_end,
    r.c.domains,
    r.c.successful,
    r.c.failed,
    r.c.status,
    r.c.status_reason,
    r.c.dkim_result,
    r.c.dkim_domain,
    r.c.dkim_aligned,
    r.c.warnings,
    r.c.first_channel,
)


async def report_page(
    db: Database,
    domains: Collection[str] | None,
    *,
    domain: str | None = None,
    org: str | None = None,
    since: date | None = None,
    until: date | None = None,
    status: str = "stored",
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, list[Row]]:
    """(total, one page of reports), newest first."""
    where: list[ColumnElement[bool]] = [r.c.status == status, *_days(r.c.day, since, until)]
    where += _visible(domains)
    if domain is not None or domains is not None:
        cond = [report_policies.c.report_pk == r.c.pk]
        if domain is not None:
            cond.append(report_policies.c.policy_domain == domain)
        where.append(exists().where(and_(*cond)))
    if org is not None:
        where.append(r.c.organization == org)
    total = await db.fetch(select(func.count().label("n")).select_from(r).where(and_(*where)))
    rows = await db.fetch(
        select(*_LIST_COLUMNS)
        .where(and_(*where))
        .order_by(r.c.day.desc(), r.c.range_start.desc(), r.c.pk.desc())
        .offset(offset)
        .limit(limit)
    )
    for x in rows:
        x["domains"] = orjson.loads(x["domains"])
        x["warnings"] = len(orjson.loads(x["warnings"]))
    return int(total[0]["n"]), rows


async def report_detail(
    db: Database, pk: int, domains: Collection[str] | None
) -> dict[str, Any] | None:
    """One report with its policies, failure details, arrivals and raw bytes; None when
    it does not exist or is not visible to the caller."""
    found = await db.fetch(select(r).where(and_(r.c.pk == pk, *_visible(domains))))
    if not found:
        return None
    report = found[0]
    pol = await db.fetch(
        select(report_policies).where(report_policies.c.report_pk == pk).order_by(p.c.idx)
    )
    if domains is not None and not pol:
        return None
    fail = await db.fetch(
        select(report_failures)
        .where(report_failures.c.report_pk == pk)
        .order_by(f.c.policy_idx, f.c.idx)
    )
    arr = await db.fetch(select(arrivals).where(arrivals.c.report_pk == pk).order_by(arrivals.c.pk))
    raw = await db.fetch(
        select(raw_inputs.c.body).where(raw_inputs.c.sha256 == report["raw_sha256"])
    )
    report["domains"] = orjson.loads(report["domains"])
    report["warnings"] = orjson.loads(report["warnings"])
    for x in pol:
        x["policy_string"] = orjson.loads(x["policy_string"])
        x["mx_host"] = orjson.loads(x["mx_host"])
    return {
        "report": report,
        "policies": pol,
        "failures": fail,
        "arrivals": arr,
        "raw": bytes(raw[0]["body"]) if raw else None,
    }


async def last_checks(db: Database, domains: Collection[str] | None) -> dict[str, dict[str, Any]]:
    """The newest `mtasts monitor` check of each domain (its check history, migration
    0004): status (OK | WARNING | CRITICAL | UNKNOWN), when, and its active conditions."""
    m = monitor_checks
    newest = (
        select(m.c.domain, func.max(m.c.checked_at).label("at"))
        .where(*_domains(m.c.domain, domains))
        .group_by(m.c.domain)
        .subquery("newest")
    )
    q = select(m.c.domain, m.c.status, m.c.checked_at, m.c.conditions).join(
        newest, and_(newest.c.domain == m.c.domain, newest.c.at == m.c.checked_at)
    )
    out: dict[str, dict[str, Any]] = {}
    for x in await db.fetch(q):
        conditions = orjson.loads(x["conditions"])
        out[x["domain"]] = {
            "status": x["status"],
            "at": datetime.fromtimestamp(int(x["checked_at"]), UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "checked_at": int(x["checked_at"]),
            "conditions": len(conditions) if isinstance(conditions, list) else 0,
        }
    return out


async def any_report(db: Database) -> bool:
    return bool(await db.fetch(select(r.c.pk).limit(1)))
