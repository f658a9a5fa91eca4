"""Writes of TLS-RPT receiving: one transaction per batch of arrivals.

A batch of parsed arrivals is written with a handful of set-based statements (the raw
archive, the duplicate lookup, reports, policies, failure details, arrivals), so a
receiver under load commits many reports per transaction and each caller is answered
only after the COMMIT. Writers are serialised per database (SQLite's BEGIN IMMEDIATE;
a PostgreSQL advisory lock), so two processes never store one report twice.
The read side is :mod:`mtasts.tlsrpt.receive.received_query`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, false, literal, or_, select, text, update

from mtasts.store.engine import Database, dialect_insert, open_database
from mtasts.store.migrate import upgrade
from mtasts.store.received_schema import (
    arrivals,
    raw_inputs,
    releases,
    report_failures,
    report_policies,
    reports,
)
from mtasts.tlsrpt.receive.decide import (
    Disposition,
    DkimResult,
    DkimVerdict,
    promotes,
    report_day,
)
from mtasts.tlsrpt.receive.rows import (
    ARRIVAL_COLUMNS,
    DKIM_COLUMNS,
    FAILURE_COLUMNS,
    POLICY_COLUMNS,
    RAW_COLUMNS,
    REPORT_COLUMNS,
    Pending,
    Row,
    arrival_row,
    cut,
    detail_rows,
    dkim_cols,
    nul_free,
    report_row,
)

__all__ = ["Pending", "ReceivedStore", "Written"]

_WRITE_LOCK = 0x6D747374_7263  # PostgreSQL advisory lock key of receive writers
_IN_CHUNK = 400  # values per IN (...) list


@dataclass(frozen=True, slots=True)
class Written:
    disposition: Disposition
    report_pk: int | None
    reason_code: str | None
    reason: str | None


_HEX_LIST = re.compile(r"[0-9a-f]{64}(?:','[0-9a-f]{64})*")


def _listed(values: Sequence[str]) -> str:
    """``'..','..'``: sha256 hex digests for an IN list written inline. Only 64-hex-digit
    values are accepted (nothing else can reach the SQL text); one regex checks them all."""
    listed = "','".join(values)
    if not _HEX_LIST.fullmatch(listed):
        bad = next((v for v in values if not _HEX_LIST.fullmatch(v)), "")
        raise ValueError(f"not a sha256 hex digest: {bad[:80]!r}")
    return f"'{listed}'"


def _in(column: Any, values: Sequence[str]) -> Any:
    """``column IN ('..', '..')`` for sha256 hex digests, written inline: hundreds of
    bound parameters per batch cost more to compile than the query takes to run."""
    if not values:
        return false()
    return text(f"{column.table.name}.{column.name} IN ({_listed(values)})")


def _select_in(columns: Sequence[Any], column: Any, values: Sequence[str], extra: str = "") -> str:
    """``SELECT columns FROM table WHERE column IN (...)`` as plain SQL for
    :meth:`Database.fetch_sql`: the same query as ``select(*columns).where(_in(column,
    values))``, without SQLAlchemy building and compiling it for every batch (a select()
    ~1 ms, a ``text()`` of 256 digests ~0.5 ms: its bind-parameter regexes)."""
    names = ", ".join(c.name for c in columns)
    table = column.table.name
    where = f"{column.name} IN ({_listed(values)})" if values else "1 = 0"
    # identifiers of our own schema, hex digests only (checked): nothing else is written
    return f"SELECT {names} FROM {table} WHERE {where}{extra}"  # noqa: S608


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), _IN_CHUNK):
        yield values[i : i + _IN_CHUNK]


def _dkim_rank(result: str, is_aligned: int | bool) -> int:
    if result == DkimResult.PASS.value:
        return 0 if is_aligned else 1
    return {"temperror": 2, "fail": 3}.get(result, 4)


class ReceivedStore:
    """The receiving tables of one store (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # one statement object per table, so the database reuses its compiled form
        self._insert = {
            t.name: dialect_insert(db, t)
            for t in (reports, report_policies, report_failures, arrivals)
        }
        self._insert[raw_inputs.name] = dialect_insert(db, raw_inputs).on_conflict_do_nothing()

    @classmethod
    def open(cls, url: str, *, schema: str | None = None, inline: bool = False) -> ReceivedStore:
        """``inline``: SQLite on the caller's thread (a batch command; see open_database)."""
        return cls(open_database(url, schema=schema, inline=inline))

    async def upgrade(self) -> tuple[str | None, str]:
        """Bring the schema to the newest version (Alembic; data kept)."""
        return await upgrade(self.db)

    async def close(self) -> None:
        await self.db.close()

    async def _existing(self, keys: list[str], hashes: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cols = (
            reports.c.pk,
            reports.c.dedup_key,
            reports.c.content_hash,
            reports.c.status,
            reports.c.dkim_result,
            reports.c.dkim_aligned,
        )
        for part in _chunks(sorted(set(keys))):
            out += await self.db.fetch_sql(_select_in(cols, reports.c.dedup_key, part))
        for part in _chunks(sorted(set(hashes))):
            out += await self.db.fetch_sql(_select_in(cols, reports.c.content_hash, part))
        return out

    async def known_raw(self, sha256: str) -> int | None:
        """The report an identical input (byte for byte) already gave, if any."""
        q = (
            select(arrivals.c.report_pk)
            .where(arrivals.c.raw_sha256 == sha256, arrivals.c.report_pk.is_not(None))
            .limit(1)
        )
        rows = await self.db.fetch(q)
        return int(rows[0]["report_pk"]) if rows else None

    async def known_raws(self, shas: Sequence[str]) -> dict[str, int]:
        """:meth:`known_raw` for many inputs at once."""
        out: dict[str, int] = {}
        for part in _chunks(sorted(set(shas))):
            cols = (arrivals.c.raw_sha256, arrivals.c.report_pk)
            q = _select_in(cols, arrivals.c.raw_sha256, part, " AND report_pk IS NOT NULL")
            for row in await self.db.fetch_sql(q):
                out.setdefault(row["raw_sha256"], int(row["report_pk"]))
        return out

    async def seen_many(self, shas: Sequence[str]) -> set[tuple[str, str]]:
        """(raw sha256, source) of every arrival logged for these inputs."""
        out: set[tuple[str, str]] = set()
        for part in _chunks(sorted(set(shas))):
            q = select(arrivals.c.raw_sha256, arrivals.c.source).where(
                _in(arrivals.c.raw_sha256, part)
            )
            out |= {(row["raw_sha256"], row["source"]) for row in await self.db.fetch(q)}
        return out

    async def arrivals_of(self, shas: Sequence[str]) -> tuple[set[tuple[str, str]], dict[str, int]]:
        """:meth:`seen_many` and :meth:`known_raws` in one query (an import's chunk)."""
        seen: set[tuple[str, str]] = set()
        known: dict[str, int] = {}
        for part in _chunks(sorted(set(shas))):
            cols = (arrivals.c.raw_sha256, arrivals.c.source, arrivals.c.report_pk)
            q = _select_in(cols, arrivals.c.raw_sha256, part)
            for row in await self.db.fetch_sql(q):
                seen.add((row["raw_sha256"], row["source"]))
                if row["report_pk"] is not None:
                    known.setdefault(row["raw_sha256"], int(row["report_pk"]))
        return seen, known

    async def arrival_seen(self, sha256: str, source: str) -> bool:
        """Was this input (these bytes, from this place) logged already?"""
        q = (
            select(arrivals.c.pk)
            .where(arrivals.c.raw_sha256 == sha256, arrivals.c.source == source)
            .limit(1)
        )
        return bool(await self.db.fetch(q))

    async def write(self, batch: Sequence[Pending], now: int) -> list[Written]:
        """Write ``batch`` in one transaction; one :class:`Written` per item, in order."""
        async with self.db.transaction():
            if self.db.dialect.name == "postgresql":
                await self.db.fetch(text(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})"))
            return await self._write(batch, now)

    async def _write(self, batch: Sequence[Pending], now: int) -> list[Written]:
        raws = {p.raw_sha256: p for p in batch if p.raw is not None}
        if raws:
            rows = [(sha, p.size, p.raw, p.received_at) for sha, p in sorted(raws.items())]
            await self.db.executemany(self._insert[raw_inputs.name], rows, RAW_COLUMNS)
        with_report = [p for p in batch if p.report is not None]
        found = await self._existing(
            [p.dedup_key for p in with_report if p.dedup_key],
            [p.content_hash for p in with_report if p.content_hash],
        )
        by_key = {r["dedup_key"]: r for r in found}
        by_hash = {r["content_hash"]: r for r in found}
        new: dict[str, Pending] = {}  # dedup_key -> the first copy in this batch
        new_by_hash: dict[str, Pending] = {}  # content_hash -> the same
        plan: list[tuple[Pending, Disposition, Any]] = []  # (item, disposition, existing)
        promote: dict[int, dict[str, Any]] = {}
        dkim_better: dict[int, DkimVerdict] = {}
        for p in batch:
            disp = p.verdict.disposition
            if p.known_report_pk is not None:
                plan.append((p, Disposition.DUPLICATE, {"pk": p.known_report_pk}))
                continue
            if p.report is None or disp is Disposition.REFUSED:
                plan.append((p, Disposition.REFUSED, None))
                continue
            assert p.dedup_key is not None
            assert p.content_hash is not None
            old = by_key.get(p.dedup_key) or by_hash.get(p.content_hash)
            if old is None:
                first = new.get(p.dedup_key) or new_by_hash.get(p.content_hash)
                if first is None:
                    new[p.dedup_key] = p
                    new_by_hash.setdefault(p.content_hash, p)
                    plan.append((p, disp, None))
                else:
                    plan.append((p, Disposition.DUPLICATE, first))
                continue
            plan.append((p, Disposition.DUPLICATE, old))
            if promotes(old["status"], disp):
                promote[old["pk"]] = {
                    "status": "stored",
                    "status_code": None,
                    "status_reason": None,
                }
                old["status"] = "stored"
            if _dkim_rank(p.dkim.result.value, p.dkim.aligned) < _dkim_rank(
                old["dkim_result"], old["dkim_aligned"]
            ):
                dkim_better[old["pk"]] = p.dkim
                old["dkim_result"], old["dkim_aligned"] = p.dkim.result.value, p.dkim.aligned
        pks: dict[str, int] = {}
        if new:
            days = {key: report_day(p.report).isoformat() for key, p in new.items() if p.report}
            await self.db.executemany(
                self._insert[reports.name],
                nul_free([report_row(p, days[key], now) for key, p in new.items()]),
                REPORT_COLUMNS,
            )
            for part in _chunks(list(new)):
                q = _select_in((reports.c.pk, reports.c.dedup_key), reports.c.dedup_key, part)
                pks.update({r["dedup_key"]: int(r["pk"]) for r in await self.db.fetch_sql(q)})
            prows: list[Row] = []
            frows: list[Row] = []
            for key, p in new.items():
                assert p.report is not None
                detail_rows(pks[key], p.report, days[key], prows, frows)
            await self.db.executemany(
                self._insert[report_policies.name], nul_free(prows), POLICY_COLUMNS
            )
            await self.db.executemany(
                self._insert[report_failures.name], nul_free(frows), FAILURE_COLUMNS
            )
        for upk, values in promote.items():
            await self.db.execute(update(reports).where(reports.c.pk == upk).values(**values))
        for upk, d in dkim_better.items():
            values = dict(zip(DKIM_COLUMNS, dkim_cols(d), strict=True))
            await self.db.execute(update(reports).where(reports.c.pk == upk).values(**values))
        out: list[Written] = []
        arows: list[Row] = []
        for p, disp, old in plan:
            pk: int | None = None
            code, reason = p.verdict.reason_code, p.verdict.reason
            if disp is Disposition.DUPLICATE:
                pk = int(old["pk"]) if isinstance(old, dict) else pks[str(old.dedup_key)]
                code, reason = None, None
            elif disp is not Disposition.REFUSED:
                assert p.dedup_key is not None
                pk = pks[p.dedup_key]
            out.append(Written(disp, pk, code, reason))
            arows.append(arrival_row(p, disp, code, reason, pk, archived=p.raw_sha256 in raws))
        await self.db.executemany(self._insert[arrivals.name], nul_free(arows), ARRIVAL_COLUMNS)
        return out

    # --- release, reprocess and retention ------------------------------------------------

    async def release(self, pks: Sequence[int], now: int, note: str | None) -> dict[int, str]:
        """Store quarantined reports as if they had passed: pk -> ``released``,
        ``not-quarantined`` (stored already) or ``no-such-report``. The release is kept
        by dedup key with the quarantine's code and reason, so a reprocess repeats it."""
        wanted = sorted({int(pk) for pk in pks})
        out = dict.fromkeys(wanted, "no-such-report")
        async with self.db.transaction():
            if self.db.dialect.name == "postgresql":
                await self.db.fetch(text(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})"))
            rows: list[dict[str, Any]] = []
            for i in range(0, len(wanted), _IN_CHUNK):
                part = wanted[i : i + _IN_CHUNK]
                rows += await self.db.fetch(
                    select(
                        reports.c.pk,
                        reports.c.dedup_key,
                        reports.c.status,
                        reports.c.status_code,
                        reports.c.status_reason,
                    ).where(reports.c.pk.in_([literal(pk) for pk in part]))  # ints only
                )
            held = [r for r in rows if r["status"] == Disposition.QUARANTINED.value]
            for r in rows:
                out[int(r["pk"])] = "not-quarantined"
            if held:
                await self.db.executemany(
                    dialect_insert(self.db, releases).on_conflict_do_nothing(),
                    nul_free(
                        [
                            (
                                r["dedup_key"],
                                now,
                                r["status_code"],
                                r["status_reason"],
                                cut(note, 2000),
                            )
                            for r in held
                        ]
                    ),
                    ("dedup_key", "released_at", "status_code", "status_reason", "note"),
                )
                for r in held:
                    await self.db.execute(
                        update(reports)
                        .where(reports.c.pk == r["pk"])
                        .values(
                            status=Disposition.STORED.value, status_code=None, status_reason=None
                        )
                    )
                    out[int(r["pk"])] = "released"
        return out

    async def _apply_releases(self) -> int:
        """Release again what was released by hand (after a reprocess rebuilt reports)."""
        released = select(releases.c.dedup_key).scalar_subquery()
        return await self.db.execute(
            update(reports)
            .where(reports.c.status == Disposition.QUARANTINED.value)
            .where(reports.c.dedup_key.in_(released))
            .values(status=Disposition.STORED.value, status_code=None, status_reason=None)
        )

    # --- reprocess and retention ---------------------------------------------------------

    async def replay_log(self) -> list[dict[str, Any]]:
        """Every archived arrival, oldest first (no bodies), for ``tlsrpt reprocess``."""
        q = (
            select(arrivals)
            .where(arrivals.c.raw_sha256.is_not(None))
            .order_by(arrivals.c.received_at, arrivals.c.pk)
        )
        return await self.db.fetch(q)

    async def raw(self, sha256: str) -> bytes | None:
        rows = await self.db.fetch(select(raw_inputs.c.body).where(raw_inputs.c.sha256 == sha256))
        return bytes(rows[0]["body"]) if rows else None

    async def clear_reports(self) -> None:
        """Drop every report and every archived arrival (the raw bytes stay), before a
        replay; call inside :meth:`transaction` with the replay."""
        for table in (report_failures, report_policies, reports):
            await self.db.execute(delete(table))
        await self.db.execute(delete(arrivals).where(arrivals.c.raw_sha256.is_not(None)))

    async def write_in_transaction(self, batch: Sequence[Pending], now: int) -> list[Written]:
        """:meth:`write` inside a transaction the caller holds (``tlsrpt reprocess``)."""
        return await self._write(batch, now)

    async def finish_replay(self) -> int:
        """The end of a replay (inside its transaction): the reports released by hand
        before are released again; returns how many."""
        return await self._apply_releases()

    def transaction(self) -> Any:
        return self.db.transaction()

    async def prune(self, before_day: str, before_ts: int) -> dict[str, int]:
        """Retention: delete reports of days before ``before_day``, arrivals logged before
        ``before_ts`` and raw bytes no arrival refers to any more."""
        counts: dict[str, int] = {}
        async with self.db.transaction():
            old = select(reports.c.pk).where(reports.c.day < before_day).scalar_subquery()
            counts["failures"] = await self.db.execute(
                delete(report_failures).where(report_failures.c.report_pk.in_(old))
            )
            counts["policies"] = await self.db.execute(
                delete(report_policies).where(report_policies.c.report_pk.in_(old))
            )
            counts["arrivals"] = await self.db.execute(
                delete(arrivals).where(
                    or_(arrivals.c.received_at < before_ts, arrivals.c.report_pk.in_(old))
                )
            )
            counts["reports"] = await self.db.execute(
                delete(reports).where(reports.c.day < before_day)
            )
            kept = select(reports.c.dedup_key).scalar_subquery()
            counts["releases"] = await self.db.execute(
                delete(releases).where(releases.c.dedup_key.not_in(kept))
            )
            used = select(arrivals.c.raw_sha256).where(arrivals.c.raw_sha256.is_not(None))
            counts["raw"] = await self.db.execute(
                delete(raw_inputs).where(raw_inputs.c.sha256.not_in(used.scalar_subquery()))
            )
        return counts
