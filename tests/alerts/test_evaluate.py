"""The rules end to end: reports ingested into a real store (SQLite and PostgreSQL),
the published policy served by the lab, conditions raised, repeated and resolved as
the reports change, each notified once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from mtasts.alerts.evaluate import published_policies, run_rules
from mtasts.alerts.settings import AlertSettings
from mtasts.config import Settings
from mtasts.lab.testing import LabPool, healthy_domain
from mtasts.tlsrpt.receive.decide import Channel, Disposition, ReceiveSettings
from mtasts.tlsrpt.receive.intake import Arrival, Receiver
from mtasts.tlsrpt.receive.received import ReceivedStore

from .conftest import Recorder, StoreAt

TODAY = date(2027, 1, 15)
NOW = datetime(2027, 1, 15, 12, 0, tzinfo=UTC).timestamp()
D = "a.test"
POLICY = ["version: STSv1", "mode: enforce", "mx: mx1.a.test", "max_age: 86400"]


def report(
    rid: str,
    day: date,
    ok: int,
    failures: dict[str, int] | None = None,
    *,
    org: str = "Google Inc.",
    policy: list[str] | None = None,
) -> bytes:
    failures = failures or {}
    return json.dumps(
        {
            "organization-name": org,
            "date-range": {
                "start-datetime": f"{day}T00:00:00Z",
                "end-datetime": f"{day}T23:59:59Z",
            },
            "contact-info": "tls@reporter.example",
            "report-id": rid,
            "policies": [
                {
                    "policy": {
                        "policy-type": "sts",
                        "policy-string": policy or POLICY,
                        "policy-domain": D,
                        "mx-host": ["mx1.a.test"],
                    },
                    "summary": {
                        "total-successful-session-count": ok,
                        "total-failure-session-count": sum(failures.values()),
                    },
                    "failure-details": [
                        {
                            "result-type": kind,
                            "sending-mta-ip": "192.0.2.1",
                            "receiving-mx-hostname": "mx1.a.test",
                            "failed-session-count": n,
                        }
                        for kind, n in failures.items()
                    ],
                }
            ],
        }
    ).encode()


@pytest.fixture
async def lab_settings() -> AsyncIterator[Settings]:
    """The lab serving a.test's policy (enforce, mx1.a.test): resolver settings for it."""
    async with LabPool() as pool:
        lab = await pool.start(healthy_domain(D))
        yield Settings(nameserver=lab.nameserver, ca_file=lab.ca_file, https_port=lab.https_port)


async def ingest(at: StoreAt, *bodies: bytes, release: bool = False) -> None:
    """Through the intake, as `tlsrpt receive` stores them (its own connection); with
    ``release``, each is quarantined by the intake and then released by hand, as
    `tlsrpt release` does."""
    receiver = Receiver(
        ReceivedStore.open(at.url, schema=at.schema),
        ReceiveSettings(verify_dkim=False),
        clock=lambda: NOW,
    )
    try:
        when = datetime.fromtimestamp(NOW, UTC)
        batch = [(body, Arrival(Channel.FILE, f"r{i}.json", when)) for i, body in enumerate(bodies)]
        for out in await receiver.ingest_many(batch):
            if release:
                assert out.disposition is Disposition.QUARANTINED, out.reason
                assert out.report_pk is not None
                assert await receiver.release([out.report_pk]) == {out.report_pk: "released"}
            else:
                assert out.disposition is Disposition.STORED, out.reason
    finally:
        await receiver.close()


def ago(n: int) -> date:
    return TODAY - timedelta(days=n)


async def test_rules_raise_then_resolve_over_a_real_store(
    at: StoreAt, lab_settings: Settings
) -> None:
    rec = Recorder()
    # a month of clean reports from Google, then a bad day with a new failure type
    await ingest(at, *(report(f"g{n}", ago(n), 1000) for n in range(2, 30)))
    await ingest(at, report("g1", ago(1), 800, {"certificate-expired": 200}))
    settings = AlertSettings(domains=frozenset({D}))
    run = dict(today=TODAY, base=lab_settings, channels={"rec": rec}, now=NOW)

    r = await run_rules(at.store, settings, **run)
    assert sorted(r.raised) == [
        "failure-rate:a.test",
        "new-result-type:a.test:certificate-expired",
    ]
    assert r.delivered is not None
    assert r.delivered.sent == 2
    (rate,) = [m for m in rec.sent if m.kind == "failure-rate"]
    assert rate.summary == "20.0% of 1000 sessions failed on 2027-01-14 (certificate-expired 200)"

    # evaluated again (another intake, the daily run): nothing new is sent
    r = await run_rules(at.store, settings, **run)
    assert r.raised == ()
    assert len(r.repeated) == 2
    assert len(rec.sent) == 2

    # a clean report for today: 2027-01-14 is still inside the 2-day window
    await ingest(at, report("g0", ago(0), 1000))
    r = await run_rules(at.store, settings, **dict(run, now=NOW + 60))
    assert r.resolved == ()
    # tomorrow the bad day has left the window: resolved; the new type is still new
    later = dict(run, today=TODAY + timedelta(days=1), now=NOW + 86400)
    r = await run_rules(at.store, settings, **later)
    assert r.resolved == ("failure-rate:a.test",)
    assert [(str(m.event), m.kind) for m in rec.sent][-1] == ("resolved", "failure-rate")


async def test_policy_mismatch_against_the_published_policy(
    at: StoreAt, lab_settings: Settings
) -> None:
    rec = Recorder()
    testing = ["version: STSv1", "mode: testing", "mx: mx1.a.test", "max_age: 86400"]
    await ingest(
        at,
        report("m1", ago(1), 10, org="Microsoft", policy=testing),
        report("g1", ago(1), 10, org="Google Inc."),
    )
    settings = AlertSettings(
        domains=frozenset({D}), rules=frozenset({"policy-mismatch"}), failure_min_sessions=1
    )
    r = await run_rules(
        at.store, settings, today=TODAY, base=lab_settings, channels={"rec": rec}, now=NOW
    )
    assert r.raised == ("policy-mismatch:a.test",)
    (m,) = rec.sent
    assert m.details["reported"] == {"Microsoft": "mode testing, mx mx1.a.test"}
    assert m.details["published"] == "mode enforce, mx mx1.a.test"

    # the policy host cannot be reached now: the condition is kept, not resolved
    unreachable = Settings(nameserver=("127.0.0.1", 9), https_port=lab_settings.https_port)
    await ingest(at, report("m0", ago(0), 10, org="Microsoft"))  # it now sees enforce
    r = await run_rules(
        at.store,
        settings,
        today=TODAY,
        base=unreachable,
        channels={"rec": rec},
        now=NOW + 60,
        fetch_timeout=0.5,
    )
    assert r.resolved == ()
    # reachable again, and every reporter sees the published policy: resolved once it has
    # been absent for resolve_after_minutes (60), not at once
    run = dict(today=TODAY, base=lab_settings, channels={"rec": rec})
    r = await run_rules(at.store, settings, **run, now=NOW + 120)
    assert r.resolved == ()
    r = await run_rules(at.store, settings, **run, now=NOW + 3600)
    assert r.resolved == ("policy-mismatch:a.test",)


async def test_published_policies_tells_none_and_unknown_apart(lab_settings: Settings) -> None:
    found = await published_policies(["a.test", "nothing.test"], lab_settings, per_lookup=5)
    assert found["a.test"].status == "sts"
    assert found["nothing.test"].status == "none"
    down = Settings(nameserver=("127.0.0.1", 9))
    found = await published_policies(["a.test"], down, per_lookup=0.5)
    assert found["a.test"].status == "unknown"


async def test_no_reports_and_stopped_reporter_without_configured_domains(at: StoreAt) -> None:
    """Without [alerts] domains, the domains come from the store; a domain whose
    reports stopped is still evaluated while its conditions are open."""
    rec = Recorder()
    await ingest(at, *(report(f"g{n}", ago(n), 100) for n in range(5, 20)))
    await ingest(at, *(report(f"y{n}", ago(n), 100, org="Yahoo") for n in range(1, 20)))
    settings = AlertSettings(rules=frozenset({"no-reports", "reporter-stopped"}))
    r = await run_rules(
        at.store, settings, today=TODAY, base=Settings(), channels={"rec": rec}, now=NOW
    )
    assert r.raised == ("reporter-stopped:a.test:Google Inc.",)
    far = TODAY + timedelta(days=60)  # every report is out of the baseline by then
    r = await run_rules(
        at.store, settings, today=far, base=Settings(), channels={"rec": rec}, now=NOW + 60 * 86400
    )
    assert r.raised == ("no-reports:a.test",)
    assert r.resolved == ("reporter-stopped:a.test:Google Inc.",)


async def test_a_report_naming_a_bogus_domain_does_not_stop_the_others(at: StoreAt) -> None:
    """A sender can write anything as policy-domain: the intake quarantines such a report,
    but an administrator can release it (or an older release stored it): a name that
    cannot be a domain is skipped (and logged), the other domains are still evaluated."""
    rec = Recorder()
    good = report("g1", ago(1), 10, {"certificate-expired": 990})
    bogus = good.replace(b'"policy-domain": "a.test"', b'"policy-domain": "not a domain"')
    await ingest(at, good)
    await ingest(at, bogus.replace(b'"g1"', b'"b1"'), release=True)
    settings = AlertSettings(rules=frozenset({"failure-rate"}))
    r = await run_rules(
        at.store, settings, today=TODAY, base=Settings(), channels={"rec": rec}, now=NOW
    )
    assert r.raised == ("failure-rate:a.test",)


async def test_a_store_without_reports_evaluates_to_nothing(at: StoreAt) -> None:
    """A new store (no report yet, no [alerts] domains, no open condition): no domain to
    evaluate, so nothing is raised, and no empty IN () reaches the SQL (SQLite refused
    SQLAlchemy's unrendered placeholder for it, failing every evaluation)."""
    r = await run_rules(
        at.store, AlertSettings(), today=TODAY, base=Settings(), channels={}, now=NOW
    )
    assert r.raised == ()
    assert r.resolved == ()
