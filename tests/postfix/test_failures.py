"""The daemon's policy-failure counter against real TLS-RPT stores (SQLite, PostgreSQL):
counts, de-duplication, bounds, and a store that is away."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.pg import PG_URL, fresh_schema

from mtasts.postfix.failures import PolicyFailures, failure_session
from mtasts.results import PolicyType
from mtasts.tlsrpt.store import TlsRptStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()
DAY = datetime(2026, 11, 22, tzinfo=UTC).date()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TlsRptStore]:
    """A TLS-RPT store without its tables (the counter creates them), on both backends."""
    if request.param == "sqlite":
        s = TlsRptStore.open(f"sqlite:///{tmp_path / 'tlsrpt.db'}")
        yield s
        await s.close()
        return
    async with fresh_schema("f") as schema:
        s = TlsRptStore.open(PG_URL, schema=schema)
        try:
            yield s
        finally:
            await s.close()


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counter(store: TlsRptStore, **kwargs: object) -> tuple[PolicyFailures, Ticks]:
    ticks = Ticks()
    failures = PolicyFailures(store, clock=lambda: NOW, monotonic=ticks, **kwargs)  # type: ignore[arg-type]
    return failures, ticks


async def test_failures_land_in_the_store_as_sts_failure_sessions(store: TlsRptStore) -> None:
    failures, ticks = counter(store)
    for who in (1, 2, 3):
        assert failures.count(who, "bad.example", "sts-policy-fetch-error", "fetch.status")
    assert failures.count(1, "invalid.example", "sts-policy-invalid", "policy.mode")
    assert await failures.flush()
    got = await store.load_day(DAY)
    by_domain = {k.policy_domain: (k, n) for k, n in got.failures.items()}
    key, n = by_domain["bad.example"]
    assert n == 3
    assert key.policy_type is PolicyType.STS
    assert key.domain == "bad.example"
    assert not got.successes
    details = {
        (k.policy_domain, f.result_type, f.failure_reason_code): c
        for (k, f), c in got.details.items()
    }
    assert details == {
        ("bad.example", "sts-policy-fetch-error", "fetch.status"): 3,
        ("invalid.example", "sts-policy-invalid", "policy.mode"): 1,
    }
    # a second flush adds (upsert +n), never overwrites
    ticks.now += 10
    failures.count(1, "bad.example", "sts-policy-fetch-error", "fetch.status")
    assert await failures.flush()
    got = await store.load_day(DAY)
    assert {k.policy_domain: n for k, n in got.failures.items()}["bad.example"] == 4


async def test_one_connection_asking_again_at_once_is_one_session(store: TlsRptStore) -> None:
    """The same connection asking for the same domain within the window is one attempt;
    a retry later, or another connection, is another session."""
    failures, ticks = counter(store, dedup_window=2.0)
    assert failures.count(7, "bad.example", "sts-webpki-invalid")
    assert not failures.count(7, "bad.example", "sts-webpki-invalid")
    assert failures.count(8, "bad.example", "sts-webpki-invalid")
    ticks.now += 5
    assert failures.count(7, "bad.example", "sts-webpki-invalid")
    assert failures.counted == 3


async def test_a_store_that_is_away_keeps_the_counts_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Counting never waits for the store; a failed flush keeps the counts for the next
    (the collector's CounterFlusher: back-off, a few log lines, never a traceback)."""
    missing = tmp_path / "not-yet"
    store = TlsRptStore.open(f"sqlite:///{missing / 'tlsrpt.db'}")
    failures, _ = counter(store)
    with caplog.at_level("WARNING"):
        for who in range(4):
            assert failures.count(who, "bad.example", "sts-policy-fetch-error")
            assert not await failures.flush()
    lines = [r.getMessage() for r in caplog.records if "unavailable" in r.getMessage()]
    assert 1 <= len(lines) <= 3
    assert "Traceback" not in caplog.text
    missing.mkdir()  # the store comes back
    assert await failures.flush()
    got = await store.load_day(DAY)
    assert sum(got.failures.values()) == 4
    await failures.close()


async def test_counts_waiting_for_the_store_are_bounded(tmp_path: Path) -> None:
    store = TlsRptStore.open(f"sqlite:///{tmp_path / 'absent' / 'x.db'}")
    failures, _ = counter(store, max_pending=4096)
    for i in range(100):
        failures.count(i, f"d{i}.example", "sts-policy-fetch-error")
    assert failures.dropped > 0
    assert failures.flusher.counters.weight < 4096 + 2048
    before = failures.counted
    assert failures.count(999, "d0.example", "sts-policy-fetch-error")  # known: counted
    assert failures.counted == before + 1


async def test_close_writes_what_is_left(store: TlsRptStore) -> None:
    failures, _ = counter(store, flush_interval=3600)
    failures.start()
    failures.count(1, "late.example", "sts-policy-invalid")
    await asyncio.sleep(0)
    await failures.close()
    reopened = store  # close() closed the connection; the next call reconnects
    got = await reopened.load_day(DAY)
    assert sum(got.failures.values()) == 1


def test_failure_session_shape() -> None:
    s = failure_session("bad.example", "sts-webpki-invalid", "fetch.tls")
    (p,) = s.policies
    assert (s.domain, s.tlsrpt_record) == ("bad.example", "")
    assert (p.policy_type, p.policy_domain, p.failed) == (PolicyType.STS, "bad.example", True)
    assert [(f.result_type, f.failure_reason_code) for f in p.failures] == [
        ("sts-webpki-invalid", "fetch.tls")
    ]


# --- one store setting for the daemon and the tlsrpt commands ------------------------------


def test_store_setting_precedence_and_errors(tmp_path: Path) -> None:
    from mtasts.errors import ConfigError
    from mtasts.tlsrpt.storeconf import configured_store

    toml = tmp_path / "mtasts.toml"
    toml.write_text('[tlsrpt]\nstore = "sqlite:////var/lib/x/tlsrpt.db"\n')
    assert configured_store(toml, environ={}) == "sqlite:////var/lib/x/tlsrpt.db"
    env = {"MTASTS_TLSRPT_STORE": "postgresql://u@h/db"}
    assert configured_store(toml, environ=env) == "postgresql://u@h/db"
    assert configured_store(None, environ={}) is None or os.path.exists("/etc/mtasts/mtasts.toml")
    toml.write_text('[tlsrpt]\nstore = "mysql://h/db"\n')
    with pytest.raises(ConfigError, match="not supported"):
        configured_store(toml, environ={})
    toml.write_text('[tlsrpt]\nstor = "sqlite:////x.db"\n')
    with pytest.raises(ConfigError, match="unknown setting 'stor'"):
        configured_store(toml, environ={})


def test_tlsrpt_reports_reads_the_store_from_the_config_file(tmp_path: Path) -> None:
    """`tlsrpt reports` (and collect, send) use [tlsrpt] store, as the daemon does."""
    from click.testing import CliRunner

    from mtasts.cli.main import cli

    db = tmp_path / "tlsrpt.db"
    url = f"sqlite:///{db}"

    async def fill() -> None:
        s = TlsRptStore.open(url)
        failures = PolicyFailures(s, clock=lambda: NOW)
        failures.count(1, "bad.example", "sts-policy-fetch-error")
        await failures.close()

    asyncio.run(fill())
    toml = tmp_path / "mtasts.toml"
    toml.write_text(f'[tlsrpt]\nstore = "{url}"\n')
    env = {"MTASTS_CONFIG": str(toml), "MTASTS_TLSRPT_STORE": ""}
    args = ["tlsrpt", "reports", "--day", DAY.isoformat(), "--json"]
    result = CliRunner(env=env).invoke(
        cli, [*args, "--organization", "Example", "--contact", "t@sender.example"]
    )
    assert result.exit_code == 0, result.output
    assert "sts-policy-fetch-error" in result.output
