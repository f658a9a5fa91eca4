"""The alert tables of one store (SQLite or PostgreSQL): conditions and the outbox.

:meth:`AlertStore.apply` stores one source's transitions and their notifications in one
transaction (serialised across processes: SQLite's BEGIN IMMEDIATE, a PostgreSQL
advisory lock), so two evaluations racing (``tlsrpt receive``'s hook and ``alerts run``)
never raise one condition twice. The outbox is then drained by
:mod:`mtasts.alerts.deliver`, which marks each notification sent or schedules its retry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, insert, literal, select, text, update

from mtasts.alerts.message import Message
from mtasts.alerts.model import Condition, OpenCondition, Plan, Severity, plan
from mtasts.store.alerts_schema import conditions, notifications
from mtasts.store.engine import Database, open_database
from mtasts.store.migrate import upgrade

_LOCK_ID = 0x6D7461737474  # PostgreSQL advisory lock key of the alert tables
_CHUNK = 400


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One notification waiting in the outbox."""

    pk: int
    channel: str
    message: Message
    attempts: int
    created_at: int


def _open_condition(row: dict[str, Any]) -> OpenCondition:
    c = Condition(
        kind=row["kind"],
        domain=row["domain"],
        subject=row["subject"],
        severity=Severity(row["severity"]),
        summary=row["summary"],
        details=orjson.loads(row["details"]),
    )
    return OpenCondition(
        int(row["pk"]), row["source"], c, int(row["first_seen"]), int(row["last_seen"])
    )


def _details(c: Condition) -> str:
    return orjson.dumps(dict(c.details), option=orjson.OPT_NON_STR_KEYS).decode()


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, url: str, *, schema: str | None = None) -> AlertStore:
        return cls(open_database(url, schema=schema))

    async def upgrade(self) -> tuple[str | None, str]:
        return await upgrade(self.db)

    async def close(self) -> None:
        await self.db.close()

    # --- conditions ----------------------------------------------------------------------

    async def open_conditions(
        self, *, source: str | None = None, domain: str | None = None
    ) -> list[OpenCondition]:
        """Open conditions, oldest first (optionally of one source or domain)."""
        where: list[Any] = [conditions.c.resolved_at.is_(None)]
        if source is not None:
            where.append(conditions.c.source == source)
        if domain is not None:
            where.append(conditions.c.domain == domain.strip().rstrip(".").lower())
        rows = await self.db.fetch(select(conditions).where(and_(*where)).order_by(conditions.c.pk))
        return [_open_condition(r) for r in rows]

    async def history(self, *, limit: int = 100) -> list[dict[str, Any]]:
        """The newest conditions, open and resolved, newest first."""
        rows = await self.db.fetch(select(conditions).order_by(conditions.c.pk.desc()).limit(limit))
        out = []
        for r in rows:
            item = _open_condition(r).to_json()
            item["resolved_at"] = r["resolved_at"]
            out.append(item)
        return out

    async def apply(
        self,
        source: str,
        current: Iterable[Condition],
        *,
        now: int,
        channels: Sequence[str],
        domains: Iterable[str] | None = None,
        keep: Iterable[str] = (),
        hold: int = 0,
    ) -> Plan:
        """Store the transitions from the open conditions to ``current`` and one
        notification per transition and channel; returns the plan applied."""
        current = list(current)
        async with self.db.transaction():
            if self.db.dialect.name == "postgresql":
                await self.db.fetch(text(f"SELECT pg_advisory_xact_lock({_LOCK_ID})"))
            open_ = await self.open_conditions()
            todo = plan(
                open_, current, source=source, domains=domains, keep=keep, now=now, hold=hold
            )
            outbox: list[dict[str, Any]] = []
            for c in todo.raised:
                pk = await self._insert(source, c, now)
                outbox += _rows(Message.raised(c, source=source, now=now, pk=pk), channels, now)
            for old, c in todo.repeated:
                await self.db.execute(
                    update(conditions)
                    .where(conditions.c.pk == old.pk)
                    .values(
                        last_seen=now,
                        severity=str(c.severity),
                        summary=c.summary,
                        details=_details(c),
                    )
                )
            for old in todo.resolved:
                await self.db.execute(
                    update(conditions)
                    .where(conditions.c.pk == old.pk)
                    .values(open_key=None, resolved_at=now)
                )
                outbox += _rows(Message.resolved(old, now=now), channels, now)
            if outbox:
                await self.db.executemany(insert(notifications), outbox)
        return todo

    async def _insert(self, source: str, c: Condition, now: int) -> int:
        values = {
            "open_key": c.key,
            "key": c.key,
            "source": source,
            "kind": c.kind,
            "domain": c.domain,
            "subject": c.subject,
            "severity": str(c.severity),
            "summary": c.summary,
            "details": _details(c),
            "first_seen": now,
            "last_seen": now,
            "resolved_at": None,
        }
        rows = await self.db.fetch(insert(conditions).values(values).returning(conditions.c.pk))
        return int(rows[0]["pk"])

    # --- the outbox ----------------------------------------------------------------------

    async def due(self, now: int, channels: Iterable[str], *, limit: int = 100) -> list[Outgoing]:
        """Pending notifications of ``channels`` whose time has come, oldest first."""
        names = sorted(channels)
        if not names:
            return []
        where: list[Any] = [
            notifications.c.status == "pending",
            notifications.c.next_attempt_at <= now,
            notifications.c.channel.in_([literal(c) for c in names]),
        ]
        rows = await self.db.fetch(
            select(notifications).where(and_(*where)).order_by(notifications.c.pk).limit(limit)
        )
        return [
            Outgoing(
                int(r["pk"]),
                r["channel"],
                Message.loads(r["payload"]),
                int(r["attempts"]),
                int(r["created_at"]),
            )
            for r in rows
        ]

    async def claim(self, pk: int, now: int, until: int) -> bool:
        """Take one due notification for sending until ``until`` (a lease): False if
        another process took it first. A sender that dies leaves it to the next one
        once the lease ends (delivery is at least once)."""
        taken = await self.db.execute(
            update(notifications)
            .where(
                and_(
                    notifications.c.pk == pk,
                    notifications.c.status == "pending",
                    notifications.c.next_attempt_at <= now,
                )
            )
            .values(next_attempt_at=until)
        )
        return taken == 1

    async def expire_others(self, channels: Iterable[str], before: int) -> int:
        """Pending notifications of channels not in ``channels`` (no longer configured
        here) created before ``before``: marked failed. Younger ones wait (another
        process may have that channel)."""
        where: list[Any] = [
            notifications.c.status == "pending",
            notifications.c.created_at < before,
        ]
        names = sorted(channels)
        if names:
            where.append(notifications.c.channel.not_in([literal(c) for c in names]))
        return await self.db.execute(
            update(notifications)
            .where(and_(*where))
            .values(status="failed", last_error="the channel is not configured")
        )

    async def mark_sent(self, pk: int, now: int) -> None:
        await self.db.execute(
            update(notifications)
            .where(notifications.c.pk == pk)
            .values(
                status="sent", sent_at=now, attempts=notifications.c.attempts + 1, last_error=None
            )
        )

    async def mark_failed(self, pk: int, error: str, *, retry_at: int | None) -> None:
        """One failed attempt: retried at ``retry_at``, or given up (None)."""
        values: dict[str, Any] = {
            "attempts": notifications.c.attempts + 1,
            "last_error": error[:1000],
        }
        if retry_at is None:
            values["status"] = "failed"
        else:
            values["next_attempt_at"] = retry_at
        await self.db.execute(
            update(notifications).where(notifications.c.pk == pk).values(**values)
        )

    async def outbox_counts(self) -> dict[str, int]:
        """Notifications by status (pending, sent, failed)."""
        rows = await self.db.fetch(
            select(notifications.c.status, func.count().label("n")).group_by(notifications.c.status)
        )
        return {r["status"]: int(r["n"]) for r in rows}

    async def notifications_of(self, condition_pks: Sequence[int]) -> list[dict[str, Any]]:
        """The outbox rows of some conditions (for tests and ``alerts list --json``)."""
        out: list[dict[str, Any]] = []
        for i in range(0, len(condition_pks), _CHUNK):
            part = [literal(pk) for pk in condition_pks[i : i + _CHUNK]]
            out += await self.db.fetch(
                select(
                    notifications.c.condition_pk,
                    notifications.c.event,
                    notifications.c.channel,
                    notifications.c.status,
                    notifications.c.attempts,
                    notifications.c.sent_at,
                    notifications.c.last_error,
                )
                .where(notifications.c.condition_pk.in_(part))
                .order_by(notifications.c.pk)
            )
        return out


def _rows(message: Message, channels: Sequence[str], now: int) -> list[dict[str, Any]]:
    payload = message.dumps()
    return [
        {
            "condition_pk": message.condition_pk,
            "event": str(message.event),
            "channel": channel,
            "payload": payload,
            "created_at": now,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "sent_at": None,
            "last_error": None,
        }
        for channel in channels
    ]
