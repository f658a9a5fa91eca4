"""Alembic migrations shipped in the package: a store written by the first release
(CREATE TABLE IF NOT EXISTS, no version) upgrades in place with its data, on SQLite and
PostgreSQL; an empty store is built to the newest version; the migrations give exactly
the tables the code describes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine, select
from tests.pg import PG_URL

from mtasts.results import PolicyType
from mtasts.store import alerts_schema, monitor_schema, received_schema
from mtasts.store.migrate import FIRST_RELEASE, current_revision, head, upgrade
from mtasts.store.schema import deliveries, failure_counters, metadata, outbox, policy_counters
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.receive.decide import Channel, Disposition, ReceiveSettings
from mtasts.tlsrpt.receive.intake import Arrival, Receiver
from mtasts.tlsrpt.receive.received import ReceivedStore
from mtasts.tlsrpt.store import OutboxReport, TlsRptStore

from .conftest import _pg_store

DAY = date(2026, 11, 22)
assert received_schema.RECEIVE_TABLES  # the receiving tables are part of `metadata`
assert alerts_schema.ALERT_TABLES  # and the alert tables
assert monitor_schema.monitor_checks is not None  # so is the monitor's check history


def _first_release_metadata() -> MetaData:
    """The first release's schema exactly: its four tables, created the way its
    TlsRptStore.create() did (Database.create_all, CREATE TABLE IF NOT EXISTS)."""
    old = MetaData()
    for table in (policy_counters, failure_counters, outbox, deliveries):
        table.to_metadata(old)
    return old


def _counters() -> Counters:
    c = Counters()
    ok = PolicyOutcome(PolicyType.STS, "a.example", ("version: STSv1",), ("mx.a.example",))
    bad = PolicyOutcome(
        ok.policy_type,
        ok.policy_domain,
        ok.policy_string,
        ok.mx_host,
        True,
        (FailureOutcome("certificate-expired", "192.0.2.1", "mx.a.example"),),
    )
    for _ in range(5):
        c.add(DAY, SessionOutcome("a.example", "v=TLSRPTv1; rua=mailto:r@a.example", (ok,)))
    c.add(DAY, SessionOutcome("a.example", "v=TLSRPTv1; rua=mailto:r@a.example", (bad,)))
    return c


@pytest.fixture(params=["sqlite", "postgresql"])
async def bare(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[TlsRptStore, str, str | None]]:
    """A TLS-RPT store with no tables yet: (store, url, schema)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        s = TlsRptStore.open(url)
        yield s, url, None
        await s.close()
    else:
        async for s in _pg_store():
            yield s, PG_URL, s.db.schema  # type: ignore[attr-defined]


async def test_a_first_release_store_upgrades_in_place_with_its_data(
    bare: tuple[TlsRptStore, str, str | None], samples_dir: Path
) -> None:
    store, url, schema = bare
    await store.db.create_all(_first_release_metadata())  # what the first release did
    await store.add_counters(_counters())
    report = OutboxReport(
        DAY, "a.example", "rid-1", "f.json.gz", b"\x1f\x8bbody", "rec", ("mailto:r@a.example",)
    )
    assert await store.enqueue([report], 1_800_000_000) == 1
    assert await current_revision(store.db) == FIRST_RELEASE

    assert await upgrade(store.db) == (FIRST_RELEASE, head())
    assert await current_revision(store.db) == head()
    # the data written by the first release is all there
    day = await store.load_day(DAY)
    assert sum(day.successes.values()) == 5
    assert sum(day.failures.values()) == 1
    assert (await store.report(DAY, "a.example")).body == b"\x1f\x8bbody"
    assert [d.destination for d in await store.deliveries()] == ["mailto:r@a.example"]
    # a second upgrade (every start runs one) changes nothing
    assert await upgrade(store.db) == (head(), head())
    await store.close()

    # and the upgraded store receives reports
    r = await Receiver.open(url, ReceiveSettings(verify_dkim=False), schema=schema)
    try:
        raw = (samples_dir / "cry-inc+dmarc-report-viewer" / "google.json").read_bytes()
        out = await r.ingest(raw, Arrival(Channel.FILE, "google.json", datetime.now(UTC)))
        assert out.disposition is Disposition.STORED
    finally:
        await r.close()


async def test_an_empty_store_is_built_to_the_newest_version(
    bare: tuple[TlsRptStore, str, str | None],
) -> None:
    store, _, _ = bare
    assert await current_revision(store.db) is None
    await store.create()
    assert await current_revision(store.db) == head()
    await store.add_counters(_counters())
    assert sum((await store.load_day(DAY)).successes.values()) == 5


async def test_concurrent_first_starts_upgrade_once(
    bare: tuple[TlsRptStore, str, str | None],
) -> None:
    import asyncio

    store, url, schema = bare
    await store.db.create_all(_first_release_metadata())
    others = [ReceivedStore.open(url, schema=schema) for _ in range(3)]
    try:
        results = await asyncio.gather(*(o.upgrade() for o in others))
    finally:
        for o in others:
            await o.close()
    assert sorted(before for before, _ in results) == [FIRST_RELEASE, head(), head()]


def test_the_migrations_make_exactly_the_tables_the_code_describes(tmp_path: Path) -> None:
    """Alembic's own comparison of the migrated database with `metadata`: no drift."""
    import asyncio

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'm.db'}"

    async def build() -> None:
        s = TlsRptStore.open(url)
        await s.create()
        await s.close()

    asyncio.run(build())
    engine = create_engine(url)  # the stdlib sqlite3 driver, synchronous
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            version = conn.execute(select(1)).scalar()
    finally:
        engine.dispose()
    assert version == 1
    assert diff == []
