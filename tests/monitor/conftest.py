"""Monitor and advise fixtures: stores on SQLite and on the real PostgreSQL server (one
schema per test, dropped afterwards), reports written by our own report writer, labs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime

import pytest

from mtasts.lab.testing import LabPool
from mtasts.results import PolicyType
from mtasts.tlsrpt.aggregate import ReportSettings, build_reports
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.receive.decide import Channel, ReceiveSettings
from mtasts.tlsrpt.receive.intake import Arrival, Receiver
from mtasts.tlsrpt.report import write_report


@pytest.fixture
async def lab_factory() -> AsyncIterator[object]:
    async with LabPool() as pool:
        yield pool.start


def policy_lines(
    mx: Sequence[str], mode: str = "testing", max_age: int = 604800
) -> tuple[str, ...]:
    return ("version: STSv1", f"mode: {mode}", *(f"mx: {m}" for m in mx), f"max_age: {max_age}")


def own_report(
    domain: str,
    day: date,
    *,
    org: str,
    ok: int,
    failures: Sequence[tuple[str, str, int]] = (),
    mx: Sequence[str] = (),
    mode: str = "testing",
    policy_type: PolicyType = PolicyType.STS,
) -> bytes:
    """One day's report for ``domain`` as our own sender writes it: session outcomes
    counted (tlsrpt.collect.counters), aggregated (tlsrpt.aggregate) and written
    (tlsrpt.report). ``failures``: (result type, receiving MX host, sessions)."""
    mx = tuple(mx) or (f"mx1.{domain}",)
    lines = policy_lines(mx, mode) if policy_type is PolicyType.STS else ()
    hosts = mx if policy_type is PolicyType.STS else ()
    counters = Counters()

    def session(*failed: FailureOutcome) -> SessionOutcome:
        policy = PolicyOutcome(
            policy_type, domain, lines, hosts, failed=bool(failed), failures=failed
        )
        return SessionOutcome(domain, f"v=TLSRPTv1; rua=mailto:r@{domain}", (policy,))

    if ok:
        counters.add(day, session(), n=ok)
    for result, host, n in failures:
        outcome = FailureOutcome(result, "192.0.2.10", host, "", "198.51.100.25")
        counters.add(day, session(outcome), n=n)
    slug = org.split()[0].lower()
    (built,) = build_reports(counters, day, ReportSettings(org, f"tlsrpt@{slug}.example"))
    return write_report(built.report)


async def seed(
    url: str, schema: str | None, reports: Sequence[bytes], now: datetime | None = None
) -> None:
    """Store ``reports`` (JSON or gzip) as if POSTed to our https intake."""
    when = now or datetime.now(UTC)
    receiver = await Receiver.open(
        url, ReceiveSettings(verify_dkim=False), clock=when.timestamp, schema=schema
    )
    try:
        for i, raw in enumerate(reports):
            outcome = await receiver.ingest_report(
                raw, Arrival(Channel.HTTPS, f"test-{i}", when, "application/tlsrpt+json")
            )
            assert outcome.report_pk is not None, outcome.reason
    finally:
        await receiver.close()
