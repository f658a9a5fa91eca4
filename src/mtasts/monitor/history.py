"""The check history of ``mtasts monitor`` in the store: write one check, read a domain's
history (the dashboard shows it next to the received reports).

Reading, for other components (the web dashboard)::

    from mtasts.monitor.history import check_history
    records = await check_history(db, "example.com", limit=50)   # newest first
    for r in records:
        print(r.checked_at, r.status, [c.key for c in r.conditions], r.snapshot.mx_hosts)

``db`` is a :class:`mtasts.store.engine.Database` on a store upgraded to the newest
version (:func:`mtasts.store.migrate.upgrade`). Every read is one index range on
(domain, checked_at).

I/O module.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, literal, select

from mtasts.check.finding import DomainReport
from mtasts.monitor.detect import Condition
from mtasts.monitor.snapshot import Snapshot
from mtasts.rfc3339 import utc_text
from mtasts.store.engine import Database
from mtasts.store.monitor_schema import monitor_checks

MAX_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One stored check of one domain."""

    pk: int
    domain: str
    checked_at: datetime  # UTC
    status: str  # OK | WARNING | CRITICAL | UNKNOWN
    snapshot: Snapshot
    findings: tuple[dict[str, Any], ...]  # as `mtasts check --json` prints them
    conditions: tuple[Condition, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "checked_at": utc_text(self.checked_at),
            "status": self.status,
            "snapshot": self.snapshot.to_json(),
            "findings": list(self.findings),
            "conditions": [c.to_json() for c in self.conditions],
        }


def _record(row: Any) -> CheckRecord:
    return CheckRecord(
        pk=int(row["pk"]),
        domain=row["domain"],
        checked_at=datetime.fromtimestamp(int(row["checked_at"]), UTC),
        status=row["status"],
        snapshot=Snapshot.from_json(orjson.loads(row["snapshot"])),
        findings=tuple(orjson.loads(row["findings"])),
        conditions=tuple(Condition.from_json(c) for c in orjson.loads(row["conditions"])),
    )


async def record_check(
    db: Database,
    report: DomainReport,
    snapshot: Snapshot,
    conditions: tuple[Condition, ...],
    checked_at: datetime,
) -> None:
    """Store one check."""
    await db.execute(
        insert(monitor_checks).values(
            domain=snapshot.domain,
            checked_at=int(checked_at.timestamp()),
            status=report.status.name,
            sts_id=snapshot.sts_id,
            policy_text=snapshot.policy_text,
            snapshot=orjson.dumps(snapshot.to_json()).decode(),
            findings=orjson.dumps([f.to_json() for f in report.findings]).decode(),
            conditions=orjson.dumps([c.to_json() for c in conditions]).decode(),
        )
    )


async def check_history(
    db: Database,
    domain: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[CheckRecord]:
    """A domain's checks, newest first, at most ``limit`` (capped at 10,000)."""
    t = monitor_checks
    where = [t.c.domain == domain.strip().rstrip(".").lower()]
    if since is not None:
        where.append(t.c.checked_at >= int(since.timestamp()))
    if until is not None:
        where.append(t.c.checked_at <= int(until.timestamp()))
    q = (
        select(t)
        .where(and_(*where))
        .order_by(t.c.checked_at.desc(), t.c.pk.desc())
        .limit(max(1, min(limit, MAX_LIMIT)))
    )
    return [_record(row) for row in await db.fetch(q)]


async def latest(db: Database, domain: str) -> CheckRecord | None:
    """The newest check of ``domain``, if any."""
    rows = await check_history(db, domain, limit=1)
    return rows[0] if rows else None


async def first_policy_with_id(db: Database, domain: str, sts_id: str | None) -> str | None:
    """The policy text first seen while the TXT record had ``sts_id`` (what senders that
    fetched at that id cached)."""
    if sts_id is None:
        return None
    t = monitor_checks
    q = (
        select(t.c.policy_text)
        .where(and_(t.c.domain == domain, t.c.sts_id == sts_id, t.c.policy_text.is_not(None)))
        .order_by(t.c.checked_at, t.c.pk)
        .limit(1)
    )
    rows = await db.fetch(q)
    return str(rows[0]["policy_text"]) if rows else None


async def monitored_domains(db: Database) -> list[tuple[str, datetime]]:
    """Every domain with a stored check, and when it was last checked."""
    t = monitor_checks
    q = select(t.c.domain, func.max(t.c.checked_at).label("last")).group_by(t.c.domain)
    return [
        (row["domain"], datetime.fromtimestamp(int(row["last"]), UTC)) for row in await db.fetch(q)
    ]


async def last_checks(
    db: Database, domains: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per domain (all, or those of ``domains``), its last check as
    ``{"status": "OK", "at": datetime, "summary": "...", "conditions": [keys]}``: the
    dashboard's ``CheckHistory`` (mtasts.web.data). One grouped query and one fetch."""
    t = monitor_checks
    newest = select(t.c.domain, func.max(t.c.checked_at).label("last")).group_by(t.c.domain)
    if domains is not None:
        names = sorted({d.strip().rstrip(".").lower() for d in domains})
        if not names:
            return {}
        newest = newest.where(t.c.domain.in_([literal(n) for n in names[:MAX_LIMIT]]))
    sub = newest.subquery()
    q = (
        select(t.c.domain, t.c.checked_at, t.c.status, t.c.conditions, t.c.pk)
        .join(sub, and_(t.c.domain == sub.c.domain, t.c.checked_at == sub.c.last))
        .order_by(t.c.domain, t.c.pk.desc())
    )
    out: dict[str, dict[str, Any]] = {}
    for row in await db.fetch(q):
        if row["domain"] in out:  # two checks in one second: the later row
            continue
        keys = [str(c["key"]) for c in orjson.loads(row["conditions"])]
        summary = f"{len(keys)} condition(s): {', '.join(keys)}" if keys else "no condition"
        out[row["domain"]] = {
            "status": row["status"],
            "at": datetime.fromtimestamp(int(row["checked_at"]), UTC),
            "summary": summary,
            "conditions": keys,
        }
    return out


async def prune_history(db: Database, before: datetime) -> int:
    """Delete checks older than ``before``; returns how many."""
    return await db.execute(
        delete(monitor_checks).where(monitor_checks.c.checked_at < int(before.timestamp()))
    )
