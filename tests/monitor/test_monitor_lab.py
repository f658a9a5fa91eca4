"""`mtasts monitor` against a lab that changes between runs: the MX set drifts, the policy
changes without a new id, an MX loses STARTTLS, certificates approach expiry, records
and the policy host disappear. Each run raises and clears exactly the conditions the
change implies, keeps the check as history, and sets the gauges."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mtasts.check.runner import Target
from mtasts.lab import Lab, Scenario
from mtasts.lab.scenario import HostSpec, SmtpSpec
from mtasts.lab.testing import healthy_domain, policy_text
from mtasts.monitor import history
from mtasts.monitor.metrics import serve
from mtasts.monitor.service import Checked, Monitor
from mtasts.monitor.settings import MonitorSettings
from mtasts.store.engine import open_database
from mtasts.store.migrate import upgrade

pytestmark = pytest.mark.lab

LabFactory = Callable[[Scenario | str], Awaitable[Lab]]
D = "d.test"
MX1, MX2 = f"mx1.{D}", f"mx2.{D}"


def scenario() -> Scenario:
    """d.test in enforce with one MX; a second MX host runs but DNS does not list it yet."""
    base = healthy_domain(D, mx=(MX1,), mode="enforce", max_age=1209600)
    return replace(base, hosts=(*base.hosts, HostSpec(MX2, SmtpSpec())))


def target(lab: Lab) -> Target:
    return Target(
        nameserver=lab.nameserver,
        ca_file=lab.ca_file,
        https_port=lab.https_port,
        smtp_port=lab.smtp_port,
    )


def keys(conds: tuple[object, ...]) -> set[str]:
    return {c.key for c in conds}  # type: ignore[attr-defined]


async def test_conditions_follow_the_lab_over_time(lab_factory: LabFactory, tmp_path: Path) -> None:
    lab = await lab_factory(scenario())
    db = open_database(f"sqlite:///{tmp_path / 'monitor.db'}")
    await upgrade(db)
    clock = [datetime.now(UTC)]
    settings = MonitorSettings(domains=(D,), jitter=0)
    mon = Monitor(db, settings, target(lab), clock=lambda: clock[0])
    try:
        first = await mon.check(D)
        assert first.conditions == ()
        gauge = mon.metrics.registry.get_sample_value
        assert gauge("mtasts_monitor_status", {"domain": D}) == 0
        not_after = first.snapshot.mx_state(MX1).not_after  # type: ignore[union-attr]
        assert not_after is not None
        left = gauge("mtasts_monitor_cert_expiry_days", {"domain": D, "host": MX1})
        assert left == (not_after - clock[0]).days

        # the MX set changes: mx2 is listed, the policy does not name it
        lab.set_records(D, "MX", [f"10 {MX1}.", f"20 {MX2}."])
        run = await mon.check(D)
        assert keys(run.raised) == {"mx.drift"}
        (drift,) = run.conditions
        assert drift.severity == "critical"
        assert MX2 in drift.summary
        assert "MX set changed" in drift.summary

        # the policy is fixed, but the id stays: senders keep the old policy
        lab.set_policy(D, policy_text((MX1, MX2), mode="enforce", max_age=1209600))
        run = await mon.check(D)
        assert keys(run.cleared) == {"mx.drift"}
        assert keys(run.raised) == {"policy.id-unchanged"}
        # still true at the next check (the first policy seen with id=1 is the old one)
        assert keys((await mon.check(D)).conditions) == {"policy.id-unchanged"}

        # a new id clears it
        lab.set_txt(f"_mta-sts.{D}", ["v=STSv1; id=2"])
        run = await mon.check(D)
        assert run.conditions == ()
        assert keys(run.cleared) == {"policy.id-unchanged"}

        # mx2 stops offering STARTTLS
        saved = lab.mx(MX2).tls_context
        lab.mx(MX2).tls_context = None
        run = await mon.check(D)
        assert keys(run.raised) == {f"mx.starttls:{MX2}"}
        assert "stopped offering" in run.raised[0].summary
        lab.mx(MX2).tls_context = saved
        assert keys((await mon.check(D)).cleared) == {f"mx.starttls:{MX2}"}

        # records and the policy host disappear
        lab.set_txt(f"_smtp._tls.{D}", [])
        lab.set_policy_host(D, status=404)
        run = await mon.check(D)
        assert keys(run.raised) == {"tlsrpt-record.gone", "policy-host.gone"}
        assert "disappeared" in next(c.summary for c in run.raised if c.key == "tlsrpt-record.gone")
        lab.set_txt(f"_mta-sts.{D}", [])
        run = await mon.check(D)
        assert keys(run.raised) == {"sts-record.gone"}
        assert keys(run.cleared) == {"policy-host.gone"}  # no record: no policy fetched
        assert gauge("mtasts_monitor_conditions", {"domain": D, "severity": "critical"}) == 1
        lab.set_txt(f"_mta-sts.{D}", ["v=STSv1; id=2"])
        lab.set_txt(f"_smtp._tls.{D}", ["v=TLSRPTv1; rua=mailto:r@d.test"])
        lab.set_policy_host(D, status=200)
        assert keys((await mon.check(D)).conditions) == set()

        # two TXT records, a policy that does not parse, a policy host certificate for
        # another name: each leaves senders without a usable policy
        lab.set_txt(f"_mta-sts.{D}", ["v=STSv1; id=2", "v=STSv1; id=3"])
        run = await mon.check(D)
        assert keys(run.raised) == {"sts-record.gone"}
        assert "sts-record.multiple" in run.raised[0].summary
        lab.set_txt(f"_mta-sts.{D}", ["v=STSv1; id=2"])
        good = policy_text((MX1, MX2), mode="enforce", max_age=1209600)
        lab.set_policy(D, good.replace("mode: enforce", "mode: enforcing"))
        run = await mon.check(D)
        assert keys(run.raised) == {"policy-host.gone"}
        assert "policy.mode" in run.raised[0].summary
        lab.set_policy(D, good)
        lab.set_policy_host(D, cert="wrong-name")
        run = await mon.check(D)
        assert keys(run.conditions) == {"policy-host.gone"}
        assert "policy-host.cert-name" in run.conditions[0].summary
        lab.set_policy_host(D, cert="valid")
        assert keys((await mon.check(D)).cleared) == {"policy-host.gone"}

        # time passes: ten days before expiry a warning, three days before critical
        clock[0] = not_after - timedelta(days=10, hours=1)
        run = await mon.check(D)
        expiring = {c.key: c.severity for c in run.conditions}
        assert expiring[f"cert.expiry:{MX1}"] == "warning"
        assert f"cert.expiry:mta-sts.{D}" in expiring
        assert gauge("mtasts_monitor_cert_expiry_days", {"domain": D, "host": MX1}) == 10
        clock[0] = not_after - timedelta(days=3, hours=1)
        run = await mon.check(D)
        assert {c.key: c.severity for c in run.raised}[f"cert.expiry:{MX1}"] == "critical"
        assert gauge("mtasts_monitor_status", {"domain": D}) == 2

        # the alerts hold the same set, raised once each (source "monitor")
        from mtasts.alerts.store import AlertStore

        opened = await AlertStore(db).open_conditions(source="monitor", domain=D)
        expected = set()
        for c in run.conditions:
            kind, _, subject = c.key.partition(":")
            expected.add(f"{kind}:{D}:{subject}" if subject else f"{kind}:{D}")
        assert {o.key for o in opened} == expected
        assert {o.condition.severity.value for o in opened} == {"critical"}

        records = await history.check_history(db, D, limit=100)
        assert len(records) == 16
        assert records[0].status == "CRITICAL"  # newest first; graded by cert_days
        assert keys(records[0].conditions) == keys(run.conditions)
        assert records[-1].conditions == ()
        assert records[-1].snapshot.sts_id == "1"
    finally:
        await db.close()


async def test_service_schedules_and_serves_metrics(
    lab_factory: LabFactory, tmp_path: Path
) -> None:
    """run_forever: each domain re-checked after its interval; the metrics listener answers."""
    lab = await lab_factory(
        healthy_domain("a.test", max_age=1209600) + healthy_domain("b.test", max_age=1209600)
    )
    db = open_database(f"sqlite:///{tmp_path / 'svc.db'}")
    await upgrade(db)
    stop = asyncio.Event()
    seen: list[str] = []

    def done(c: Checked) -> None:
        seen.append(c.domain)
        if seen.count("a.test") >= 2 and seen.count("b.test") >= 2:
            stop.set()

    # one second between checks: below what the configuration accepts (60), fine here
    settings = MonitorSettings(domains=("a.test", "b.test"), interval=1, jitter=0, concurrency=1)
    mon = Monitor(db, settings, target(lab), on_checked=done)
    server = serve(mon.metrics, "127.0.0.1", 0)
    try:
        await asyncio.wait_for(mon.run_forever(stop), 60)
        port = server.server_address[1]
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'mtasts_monitor_status{domain="a.test"} 0.0' in body
        assert 'mtasts_monitor_cert_expiry_days{domain="b.test",host="mx1.b.test"}' in body
        assert len(await history.check_history(db, "a.test")) >= 2
    finally:
        server.shutdown()
        server.server_close()
        await db.close()


async def test_cli_once_json_and_exit_codes(
    lab_factory: LabFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The command in-process (in a thread: it runs its own event loop) against the lab."""
    from click.testing import CliRunner, Result

    from mtasts.cli.main import cli

    lab = await lab_factory(scenario())
    env = {**lab.env, "MTASTS_MONITOR_STORE": f"sqlite:///{tmp_path / 'cli.db'}"}

    async def run(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, cli, ["monitor", *args], env=env)

    result = await run("--once", "--json", "--domain", D)
    assert result.exit_code == 0, result.output
    (doc,) = json.loads(result.output)
    assert doc["conditions"] == []
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["checked_at"])  # docs/json.md
    assert doc["snapshot"]["mx"][0]["not_after"].endswith("Z")
    assert doc["status"] == "OK"
    lab.set_records(D, "MX", [f"10 {MX1}.", f"20 {MX2}."])
    result = await run("--once", "--domain", D)
    assert result.exit_code == 2, result.output
    assert "mx.drift" in result.output
    assert "RAISED critical d.test mx.drift" in caplog.text


def test_cli_history_and_usage_errors(tmp_path: Path) -> None:
    """--history prints the stored checks newest first; no domain at all is a usage error
    (exit 3, as the monitoring convention wants)."""
    from click.testing import CliRunner

    from mtasts.check.finding import DomainReport, Finding, Severity
    from mtasts.cli.main import cli
    from mtasts.monitor.detect import Condition
    from mtasts.monitor.snapshot import snapshot_of

    url = f"sqlite:///{tmp_path / 'h.db'}"

    async def seed() -> None:
        db = open_database(url)
        await upgrade(db)
        for i, bad in enumerate((False, True)):
            report = DomainReport(
                D, (Finding.of("mx.starttls", Severity.CRITICAL, "x", host=MX1),) if bad else ()
            )
            conds = (Condition(f"mx.starttls:{MX1}", D, "critical", "no STARTTLS"),) if bad else ()
            when = datetime(2026, 12, 1, 10 + i, tzinfo=UTC)
            await history.record_check(db, report, snapshot_of(report), conds, when)
        await db.close()

    asyncio.run(seed())
    runner = CliRunner()
    result = runner.invoke(cli, ["monitor", "--store", url, "--history", D, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [r["status"] for r in doc] == ["CRITICAL", "OK"]
    assert doc[0]["conditions"][0]["key"] == f"mx.starttls:{MX1}"
    result = runner.invoke(cli, ["monitor", "--store", url, "--history", D])
    assert "2026-12-01 11:00:00Z CRITICAL mx.starttls:mx1.d.test" in result.output
    result = runner.invoke(cli, ["monitor", "--store", url, "--once"], env={"MTASTS_CONFIG": ""})
    assert result.exit_code == 3
    assert "no domain to watch" in result.output
    assert runner.invoke(cli, ["monitor", "--interval", "0"]).exit_code == 3
