"""TLS-RPT counters and delivery journal on SQLite and PostgreSQL (one schema)."""

from __future__ import annotations

from datetime import date

import pytest

from mtasts.results import PolicyType
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.store import OutboxReport, TlsRptStore

DAY = date(2026, 11, 22)
FAIL = FailureOutcome("certificate-expired", "192.0.2.1", "mx.a.example", "", "198.51.100.7")


@pytest.fixture
def store(any_store: TlsRptStore) -> TlsRptStore:
    """A fresh TLS-RPT store with its tables (tests/tlsrpt/conftest.py), on each database."""
    return any_store


def _counters(n_ok: int, n_fail: int, day: date = DAY) -> Counters:
    c = Counters()
    ok = PolicyOutcome(
        PolicyType.STS, "a.example", ("version: STSv1", "mode: enforce"), ("mx.a.example",)
    )
    bad = PolicyOutcome(
        ok.policy_type, ok.policy_domain, ok.policy_string, ok.mx_host, True, (FAIL,)
    )
    for _ in range(n_ok):
        c.add(day, SessionOutcome("a.example", "v=TLSRPTv1; rua=mailto:r@a.example", (ok,)))
    for _ in range(n_fail):
        c.add(day, SessionOutcome("a.example", "v=TLSRPTv1; rua=mailto:r@a.example", (bad,)))
    return c


async def test_flush_is_one_upsert_per_counter_and_adds_up(store: TlsRptStore) -> None:
    """Two flushes of the same counters add (restart safe), never overwrite."""
    assert await store.add_counters(_counters(3, 2)) == 2
    assert await store.add_counters(_counters(4, 1)) == 2
    got = await store.load_day(DAY)
    (key,) = got.policy_keys()
    assert (got.successes[key], got.failures[key], got.details[key, FAIL]) == (7, 3, 3)
    assert key.policy_string == ("version: STSv1", "mode: enforce")
    assert key.mx_host == ("mx.a.example",)
    assert await store.days() == [DAY]


async def test_days_are_separate(store: TlsRptStore) -> None:
    await store.add_counters(_counters(1, 0, date(2026, 11, 21)))
    await store.add_counters(_counters(1, 0))
    assert await store.days() == [date(2026, 11, 21), DAY]
    assert sum((await store.load_day(DAY)).successes.values()) == 1


async def test_journal_keeps_the_first_report_and_its_destinations(store: TlsRptStore) -> None:
    rep = OutboxReport(
        DAY,
        "a.example",
        "id1",
        "f.json.gz",
        b"\x1f\x8b..",
        "rec",
        ("mailto:r@a.example", "https://r.example/t"),
    )
    assert await store.enqueue([rep], now=100) == 1
    again = OutboxReport(DAY, "a.example", "id2", "g.json.gz", b"other", "rec", ("x",))
    assert await store.enqueue([again], now=200) == 0  # a restart never rebuilds it
    assert await store.has_outbox(DAY) == {"a.example"}
    stored = await store.report(DAY, "a.example")
    assert (stored.report_id, stored.body) == ("id1", b"\x1f\x8b..")
    due = await store.deliveries(due_at=100)
    assert {d.destination for d in due} == set(rep.destinations)
    await store.update_delivery(due[0], status="sent", attempts=1, delivered_at=101)
    assert len(await store.deliveries(due_at=10_000)) == 1
    assert await store.deliveries(due_at=99) == []


def _many(n: int, *, reverse: bool, extra: int = 0) -> Counters:
    """n policies of one day, each with one failure detail, added in (reverse) order,
    then ``extra`` more (a bigger set iterates the shared keys in another order, as
    string hashing does in two collector processes)."""
    c = Counters()
    order = range(n - 1, -1, -1) if reverse else range(n)
    for i in [*order, *range(n, n + extra)]:
        fail = FailureOutcome("certificate-expired", f"192.0.2.{i % 250}", f"mx{i}.a.example")
        pol = PolicyOutcome(PolicyType.STS, f"d{i}.example", ("version: STSv1",), (), True, (fail,))
        c.add(DAY, SessionOutcome(f"d{i}.example", "", (pol,)))
    return c


async def test_two_collectors_flushing_the_same_counters_lose_nothing_and_never_deadlock(
    store: TlsRptStore,
) -> None:
    """Two connections (two collectors of one organisation) upsert the same 200 counters
    at the same time, each in its own order (as two processes' string hashing gives):
    every increment lands and neither flush fails. (Before rows were written in key
    order, PostgreSQL aborted most such flushes with 'deadlock detected'.)"""
    import asyncio

    from mtasts.store.engine import PostgresDatabase

    if isinstance(store.db, PostgresDatabase):
        other = TlsRptStore.open(store.db.dsn, schema=store.db.schema)
    else:
        other = TlsRptStore.open(f"sqlite:///{store.db.path}")  # type: ignore[attr-defined]

    async def later(counters: Counters, delay: float) -> int:
        await asyncio.sleep(delay)
        return await store.add_counters(counters)

    rounds, n, extra = 10, 200, 1000
    mine, theirs = _many(n, reverse=False), _many(n, reverse=True, extra=extra)
    try:
        for i in range(rounds):
            # the other flush starts first; ours a few ms later, while it holds row locks
            await asyncio.gather(other.add_counters(theirs), later(mine, 0.001 + i * 0.0005))
    finally:
        await other.close()
    got = await store.load_day(DAY)
    assert sum(got.failures.values()) == rounds * (2 * n + extra)
    assert sum(got.details.values()) == rounds * (2 * n + extra)
    assert len(got.policy_keys()) == n + extra


async def test_a_connection_the_server_ended_is_reopened(store: TlsRptStore) -> None:
    """PostgreSQL: pg_terminate_backend on the store's connection; SQLite: the connection
    abandoned by reset(). The next operation (at most one failure later, after a reset)
    runs on a new connection; nothing is counted twice or lost."""
    import os

    from sqlalchemy import func, select

    await store.add_counters(_counters(1, 0))
    if store.db.dialect.name == "postgresql":
        import asyncpg

        (row,) = await store.db.fetch(select(func.pg_backend_pid().label("pid")))
        url = os.environ.get("MTASTS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
        other = await asyncpg.connect(url)
        assert await other.fetchval("SELECT pg_terminate_backend($1)", row["pid"])
        await other.close()
    else:
        await store.reset()
    failures = 0
    while True:
        try:
            await store.add_counters(_counters(2, 0))
            break
        except Exception:
            failures += 1
            assert failures == 1
            await store.reset()
    got = await store.load_day(DAY)
    assert sum(got.successes.values()) == 3


async def test_a_day_read_while_another_process_flushes_is_one_consistent_snapshot(
    store: TlsRptStore,
) -> None:
    """`tlsrpt reports` reads a day while a collector keeps flushing new domains (each
    flush commits a policy row and its failure rows): every read sees whole flushes,
    so each failure detail has its policy and the failed sessions equal their details.
    (Two separate reads once saw failure rows of a flush whose policy row the first read
    had missed, and `load_day` failed with a KeyError: CI, test_store_outage.)"""
    import asyncio

    from mtasts.store.engine import PostgresDatabase

    if isinstance(store.db, PostgresDatabase):
        writer = TlsRptStore.open(store.db.dsn, schema=store.db.schema)
    else:
        writer = TlsRptStore.open(f"sqlite:///{store.db.path}")  # type: ignore[attr-defined]
    done = asyncio.Event()

    async def flush_forever() -> int:
        flushes = 0
        try:
            while not done.is_set():
                await writer.add_counters(_many(20, reverse=bool(flushes % 2), extra=flushes))
                flushes += 1
        finally:
            await writer.close()
        return flushes

    task = asyncio.create_task(flush_forever())
    try:
        for _ in range(60):
            got = await store.load_day(DAY)
            for key in got.policy_keys():
                details = sum(n for (k, _f), n in got.details.items() if k == key)
                assert details == got.failures.get(key, 0)
            await asyncio.sleep(0)
    finally:
        done.set()
        flushes = await task
    assert flushes > 1


async def test_keep_days_prunes_old_days_whole_but_never_a_report_in_flight(
    store: TlsRptStore,
) -> None:
    """[tlsrpt] keep_days: counters, reports and deliveries of days before the cutoff go
    in one transaction; a day with a delivery still pending stays whole (its counters
    too), and the days after the cutoff are untouched."""
    old, in_flight, kept = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 20)
    for day in (old, in_flight, kept):
        await store.add_counters(_counters(2, 1, day))
        rep = OutboxReport(day, "a.example", f"id-{day}", "f.gz", b"x", "rec", ("mailto:r@a",))
        assert await store.enqueue([rep], now=100) == 1
    for d in await store.deliveries():
        if d.day != in_flight:
            await store.update_delivery(d, status="sent", attempts=1, delivered_at=101)
    removed = await store.prune_before(date(2026, 11, 17))
    assert removed == {"deliveries": 1, "reports": 1, "failure_counters": 1, "policy_counters": 1}
    assert await store.days() == [in_flight, kept]
    assert {d.day for d in await store.deliveries()} == {in_flight, kept}
    assert await store.has_outbox(old) == set()
    assert (await store.load_day(in_flight)).successes  # a pending day keeps its counters
    assert await store.prune_before(date(2026, 11, 17)) == dict.fromkeys(removed, 0)
