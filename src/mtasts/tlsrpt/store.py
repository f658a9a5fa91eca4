"""Queries for TLS-RPT sending: counter upserts, a day's counters, the delivery journal."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, select, update

from mtasts.results import PolicyType
from mtasts.store.engine import Database, dialect_insert, open_database
from mtasts.store.schema import deliveries, failure_counters, outbox, policy_counters
from mtasts.tlsrpt.collect.counters import Counters, FailureKey, PolicyKey, failure_id


@dataclass(frozen=True, slots=True)
class OutboxReport:
    """A built report waiting in the journal, with its destinations."""

    day: date
    domain: str
    report_id: str
    filename: str
    body: bytes
    tlsrpt_record: str
    destinations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One (report, destination) row of the journal."""

    day: date
    domain: str
    destination: str
    status: str
    attempts: int
    not_before: int
    first_attempt_at: int | None
    delivered_at: int | None
    last_error: str


# Rows per executemany of a counter flush (the flush is still one transaction).
FLUSH_CHUNK = 2000
# pg_advisory_xact_lock key that serialises counter flushes (any fixed 64-bit number:
# "mtasts-c" in ASCII).
COUNTERS_LOCK = int.from_bytes(b"mtasts-c", "big") - (1 << 63)


def _policy_rows(counters: Counters) -> Iterator[dict[str, Any]]:
    """One row per policy counter (every key once, without building a set of them)."""
    ok, bad = counters.successes, counters.failures
    for key in counters.iter_policy_keys():
        yield {
            "day": key.day.isoformat(),
            "policy_id": key.policy_id,
            "domain": key.domain,
            "tlsrpt_record": key.tlsrpt_record,
            "policy_type": key.policy_type.value,
            "policy_domain": key.policy_domain,
            "policy_string": orjson.dumps(list(key.policy_string)).decode(),
            "mx_host": orjson.dumps(list(key.mx_host)).decode(),
            "successful": ok.get(key, 0),
            "failed": bad.get(key, 0),
        }


def _failure_rows(counters: Counters) -> Iterator[dict[str, Any]]:
    for (key, f), n in counters.details.items():
        yield {
            "day": key.day.isoformat(),
            "policy_id": key.policy_id,
            "failure_id": failure_id(f),
            "result_type": f.result_type,
            "sending_mta_ip": f.sending_mta_ip,
            "receiving_mx_hostname": f.receiving_mx_hostname,
            "receiving_mx_helo": f.receiving_mx_helo,
            "receiving_ip": f.receiving_ip,
            "additional_information": f.additional_information,
            "failure_reason_code": f.failure_reason_code,
            "count": n,
        }


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(itertools.islice(rows, FLUSH_CHUNK)):
        yield chunk


class TlsRptStore:
    """TLS-RPT counters and the delivery journal in one SQL database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    def open(cls, url: str, *, schema: str | None = None) -> TlsRptStore:
        return cls(open_database(url, schema=schema))

    async def create(self) -> None:
        """Create or upgrade the schema to the newest version (Alembic migrations, data
        kept: see mtasts.store.migrate)."""
        from mtasts.store.migrate import upgrade

        await upgrade(self.db)

    async def reset(self) -> None:
        """Abandon the database connection after a failure: the next call reconnects."""
        await self.db.reset()

    async def close(self) -> None:
        await self.db.close()

    # --- counters ----------------------------------------------------------------------

    async def add_counters(self, counters: Counters) -> int:
        """Add ``counters`` in one transaction: one upsert per counter. Returns upserts.

        Rows are built and sent FLUSH_CHUNK at a time, so a flush after a long outage
        (hundreds of thousands of counters) costs little memory beyond the counters."""
        pins = dialect_insert(self.db, policy_counters)
        pstmt = pins.on_conflict_do_update(
            index_elements=["day", "policy_id"],
            set_={
                "successful": policy_counters.c.successful + pins.excluded.successful,
                "failed": policy_counters.c.failed + pins.excluded.failed,
            },
        )
        fins = dialect_insert(self.db, failure_counters)
        fstmt = fins.on_conflict_do_update(
            index_elements=["day", "policy_id", "failure_id"],
            set_={"count": failure_counters.c["count"] + fins.excluded["count"]},
        )
        upserts = 0
        async with self.db.transaction():
            if self.db.dialect.name == "postgresql":
                # Two collectors of one organisation flushing the same counters at once
                # took row locks in different orders and PostgreSQL aborted one flush with
                # "deadlock detected". Counter flushes take this transaction lock first,
                # so they run one after the other (each takes milliseconds); SQLite's
                # BEGIN IMMEDIATE already does. (Sorting every row by key did the same
                # but held the whole batch as rows in memory at once.)
                await self.db.fetch(select(func.pg_advisory_xact_lock(COUNTERS_LOCK)))
            for chunk in _chunks(_policy_rows(counters)):
                await self.db.executemany(pstmt, chunk)
                upserts += len(chunk)
            for chunk in _chunks(_failure_rows(counters)):
                await self.db.executemany(fstmt, chunk)
                upserts += len(chunk)
        return upserts

    async def load_day(self, day: date) -> Counters:
        """All counters of one UTC day, as :class:`Counters` (for aggregation)."""
        iso = day.isoformat()
        # One snapshot for both tables: a collector committing between the two reads
        # added failure rows whose policy row the first read had not seen.
        async with self.db.snapshot():
            policies = await self.db.fetch(
                select(policy_counters).where(policy_counters.c.day == iso)
            )
            failures = await self.db.fetch(
                select(failure_counters).where(failure_counters.c.day == iso)
            )
        out = Counters()
        keys: dict[str, PolicyKey] = {}
        for r in policies:
            key = PolicyKey(
                day=day,
                domain=r["domain"],
                tlsrpt_record=r["tlsrpt_record"],
                policy_type=PolicyType(r["policy_type"]),
                policy_domain=r["policy_domain"],
                policy_string=tuple(orjson.loads(r["policy_string"])),
                mx_host=tuple(orjson.loads(r["mx_host"])),
            )
            keys[r["policy_id"]] = key
            if r["successful"]:
                out.successes[key] = r["successful"]
            if r["failed"]:
                out.failures[key] = r["failed"]
        for r in failures:
            fkey = FailureKey(
                result_type=r["result_type"],
                sending_mta_ip=r["sending_mta_ip"],
                receiving_mx_hostname=r["receiving_mx_hostname"],
                receiving_mx_helo=r["receiving_mx_helo"],
                receiving_ip=r["receiving_ip"],
                additional_information=r["additional_information"],
                failure_reason_code=r["failure_reason_code"],
            )
            out.details[keys[r["policy_id"]], fkey] = r["count"]
        return out

    async def days(self) -> list[date]:
        """The UTC days that have counters, oldest first."""
        q = select(policy_counters.c.day).distinct().order_by(policy_counters.c.day)
        return [date.fromisoformat(r["day"]) for r in await self.db.fetch(q)]

    # --- delivery journal --------------------------------------------------------------

    async def enqueue(self, reports: Sequence[OutboxReport], now: int) -> int:
        """Journal built reports and their destinations in one transaction; an existing
        (day, domain) is kept unchanged (a restart never rebuilds or re-queues a report).
        Returns the number of reports added."""
        added = 0
        async with self.db.transaction():
            for rep in reports:
                iso = rep.day.isoformat()
                ins = dialect_insert(self.db, outbox).values(
                    day=iso,
                    domain=rep.domain,
                    report_id=rep.report_id,
                    filename=rep.filename,
                    body=rep.body,
                    tlsrpt_record=rep.tlsrpt_record,
                    created_at=now,
                )
                if not await self.db.execute(ins.on_conflict_do_nothing()):
                    continue
                added += 1
                rows = [
                    {
                        "day": iso,
                        "domain": rep.domain,
                        "destination": d,
                        "status": "pending",
                        "attempts": 0,
                        "not_before": now,
                        "first_attempt_at": None,
                        "delivered_at": None,
                        "last_error": "",
                    }
                    for d in dict.fromkeys(rep.destinations)
                ]
                await self.db.executemany(dialect_insert(self.db, deliveries), rows)
        return added

    async def prune_before(self, cutoff: date) -> dict[str, int]:
        """Delete the counters and the journal of the days before ``cutoff`` (``[tlsrpt]
        keep_days``), in one transaction: rows deleted per table. A day whose journal still
        has a pending delivery is kept whole (a report in flight is never lost)."""
        iso = cutoff.isoformat()
        removed: dict[str, int] = {}
        async with self.db.transaction():
            for name, table in (
                ("deliveries", deliveries),
                ("reports", outbox),
                ("failure_counters", failure_counters),
                ("policy_counters", policy_counters),
            ):
                busy = select(deliveries.c.day).where(
                    and_(deliveries.c.day < iso, deliveries.c.status == "pending")
                )
                where = and_(table.c.day < iso, table.c.day.not_in(busy.scalar_subquery()))
                removed[name] = await self.db.execute(delete(table).where(where))
        return removed

    async def has_outbox(self, day: date) -> set[str]:
        """Domains whose report for ``day`` is already journaled."""
        q = select(outbox.c.domain).where(outbox.c.day == day.isoformat())
        return {r["domain"] for r in await self.db.fetch(q)}

    async def report(self, day: date, domain: str) -> OutboxReport:
        """One journaled report with its destinations."""
        iso = day.isoformat()
        (r,) = await self.db.fetch(
            select(outbox).where(and_(outbox.c.day == iso, outbox.c.domain == domain))
        )
        dests = await self.db.fetch(
            select(deliveries.c.destination).where(
                and_(deliveries.c.day == iso, deliveries.c.domain == domain)
            )
        )
        return OutboxReport(
            day=day,
            domain=domain,
            report_id=r["report_id"],
            filename=r["filename"],
            body=bytes(r["body"]),
            tlsrpt_record=r["tlsrpt_record"],
            destinations=tuple(d["destination"] for d in dests),
        )

    async def deliveries(self, *, due_at: int | None = None) -> list[Delivery]:
        """Journal rows; with ``due_at``, only pending rows whose time has come."""
        q = select(deliveries).order_by(deliveries.c.not_before, deliveries.c.domain)
        if due_at is not None:
            q = q.where(and_(deliveries.c.status == "pending", deliveries.c.not_before <= due_at))
        return [
            Delivery(**{**r, "day": date.fromisoformat(r["day"])}) for r in await self.db.fetch(q)
        ]

    async def update_delivery(self, d: Delivery, **values: Any) -> None:
        """Write the new state of one journal row (committed before the caller goes on)."""
        await self.db.execute(
            update(deliveries)
            .where(
                and_(
                    deliveries.c.day == d.day.isoformat(),
                    deliveries.c.domain == d.domain,
                    deliveries.c.destination == d.destination,
                )
            )
            .values(**values)
        )
