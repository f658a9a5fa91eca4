"""The alerts service: it evaluates at start, after each intake (seen through the
store) and daily, drains the outbox in between, renders per-domain metrics, and
survives a store that goes away."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.pg import PG_URL

from mtasts.alerts.service import AlertService
from mtasts.alerts.settings import AlertSettings
from mtasts.alerts.store import AlertStore
from mtasts.config import Settings

from .conftest import Recorder, StoreAt
from .test_evaluate import NOW, TODAY, ingest, report

SETTINGS = AlertSettings(
    domains=frozenset({"a.test"}),
    rules=frozenset({"failure-rate", "new-result-type", "no-reports"}),
    daily_at="06:00",
)


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def samples(service: AlertService) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(service.metrics().decode()):
        for s in family.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


async def test_start_intake_daily_and_metrics(at: StoreAt) -> None:
    rec = Recorder()
    clock = Clock(NOW)  # 2027-01-15 12:00 UTC
    service = AlertService(at.store, SETTINGS, Settings(), {"rec": rec}, clock=clock)
    await ingest(at, report("g2", TODAY - timedelta(days=2), 1000))

    tick = await service.tick()
    assert tick.evaluated == "start"
    assert tick.result is not None
    assert tick.result.raised == ()
    m = samples(service)
    assert (
        m[
            "mtasts_tlsrpt_received_sessions_total",
            (("domain", "a.test"), ("outcome", "successful")),
        ]
        == 1000
    )
    assert m["mtasts_tlsrpt_received_reports_total", (("domain", "a.test"),)] == 1
    assert m["mtasts_alerts_last_evaluation_timestamp_seconds", ()] == NOW

    tick = await service.tick()  # nothing changed: only the outbox is looked at
    assert tick.evaluated is None
    assert tick.delivered is not None

    # a report arrives (another process wrote it): the next poll evaluates at once
    await ingest(at, report("g1", TODAY - timedelta(days=1), 700, {"certificate-expired": 300}))
    clock.t += 60
    tick = await service.tick()
    assert tick.evaluated == "intake"
    m = samples(service)  # the per-domain figures are read at most every 5 minutes...
    assert m["mtasts_tlsrpt_received_reports_total", (("domain", "a.test"),)] == 1
    assert (
        m["mtasts_alerts_open_conditions", (("kind", "failure-rate"), ("severity", "critical"))]
        == 1
    )
    clock.t += 300
    assert (await service.tick()).evaluated is None  # ...then brought up to date
    assert samples(service)["mtasts_tlsrpt_received_reports_total", (("domain", "a.test"),)] == 2
    assert tick.result is not None
    assert sorted(tick.result.raised) == [
        "failure-rate:a.test",
        "new-result-type:a.test:certificate-expired",
    ]
    assert len(rec.sent) == 2
    m = samples(service)
    assert m["mtasts_tlsrpt_received_day_failure_ratio", (("domain", "a.test"),)] == 0.3
    key = (("domain", "a.test"), ("result_type", "certificate-expired"))
    assert m["mtasts_tlsrpt_received_failures_total", key] == 300
    assert (
        m["mtasts_alerts_open_conditions", (("kind", "failure-rate"), ("severity", "critical"))]
        == 1
    )
    assert m["mtasts_alerts_notifications", (("status", "sent"),)] == 2

    # the next morning at 06:00 UTC the daily run comes, with no new report: the bad day
    # has left the window, and no report for 2027-01-15 arrived yet (not "no reports")
    clock.t = datetime(2027, 1, 16, 6, 0, tzinfo=UTC).timestamp()
    tick = await service.tick()
    assert tick.evaluated == "daily"
    assert tick.result is not None
    assert tick.result.resolved == ("failure-rate:a.test",)
    clock.t += 60
    assert (await service.tick()).evaluated is None  # once a day


async def test_a_store_that_goes_away_is_survived() -> None:
    """The service's store is a PostgreSQL server that does not answer (a closed port):
    each poll fails in bounded time, is counted, and the service goes on."""
    broken = AlertStore.open("postgresql://postgres@127.0.0.1:1/none")
    service = AlertService(broken, SETTINGS, Settings(), {}, evaluation_timeout=5)
    start = time.monotonic()
    for _ in range(2):
        tick = await service.tick()
        assert tick.error is not None
        assert "Connect" in tick.error or "refused" in tick.error
    assert time.monotonic() - start < 5
    m = samples(service)
    assert m["mtasts_alerts_evaluation_failures_total", ()] == 2
    await broken.close()


@pytest.mark.parametrize("at", ["postgresql"], indirect=True)
async def test_a_postgresql_restart_under_the_service_loses_nothing(at: StoreAt) -> None:
    """The server drops the service's connection (what a restart or failover does) while
    a failure is waiting to be noticed: the next polls reconnect, raise it once, notify
    it once."""
    import asyncpg

    rec = Recorder()
    clock = Clock(NOW)
    service = AlertService(at.store, SETTINGS, Settings(), {"rec": rec}, clock=clock)
    await ingest(at, report("g2", TODAY - timedelta(days=2), 1000))
    assert (await service.tick()).evaluated == "start"
    pid = at.store.db._conn.get_server_pid()  # type: ignore[attr-defined]
    admin = await asyncpg.connect(PG_URL)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()
    await ingest(at, report("g1", TODAY - timedelta(days=1), 500, {"certificate-expired": 500}))
    raised: list[str] = []
    for _ in range(3):
        clock.t += 60
        tick = await service.tick()
        if tick.result is not None:
            raised += tick.result.raised
    assert sorted(raised) == ["failure-rate:a.test", "new-result-type:a.test:certificate-expired"]
    assert sorted(m.kind for m in rec.sent) == ["failure-rate", "new-result-type"]
