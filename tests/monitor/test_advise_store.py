"""`advise` on stores seeded with reports: the real samples and reports written by our own
report writer, for clean, noisy and truly broken domains (SQLite and PostgreSQL); then
end to end against the lab, as a library call and as the `mtasts advise` command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from mtasts.check.finding import Status
from mtasts.check.runner import Target
from mtasts.lab import Lab, Scenario
from mtasts.lab.scenario import HostSpec, SmtpSpec
from mtasts.lab.testing import healthy_domain
from mtasts.monitor.advise import Verdict, advise, candidate_policy
from mtasts.monitor.advising import advise_domain
from mtasts.monitor.judge import Impact
from mtasts.monitor.reported import read_evidence
from mtasts.monitor.snapshot import MxState, Snapshot
from mtasts.store.engine import open_database
from mtasts.store.migrate import upgrade

from .conftest import own_report, seed

LabFactory = Callable[[Scenario | str], Awaitable[Lab]]
TODAY = datetime.now(UTC).date()


def last_days(n: int) -> list[date]:
    return [TODAY - timedelta(days=i) for i in range(n)]


def live_of(domain: str, mx: tuple[str, ...], policy: str) -> Snapshot:
    far = datetime.now(UTC) + timedelta(days=60)
    return Snapshot(
        domain=domain,
        status=Status.OK,
        mx=tuple(MxState(h, True, True, True, far) for h in mx),
        sts_record="v=STSv1; id=1",
        policy_text=policy,
        policy_host_not_after=far,
    )


async def evidence_in(url: str, schema: str | None, domain: str, since: date, until: date):  # type: ignore[no-untyped-def]
    db = open_database(url, schema=schema)
    try:
        await upgrade(db)
        return await read_evidence(db, domain, since, until)
    finally:
        await db.close()


async def test_real_samples(store_url: tuple[str, str | None], samples_dir: Path) -> None:
    """The parsedmarc samples for example.com: an sts validation-failure at the implicit MX
    (Example Inc.) and Mail.ru's fetch errors. Four sessions are far too few to judge."""
    url, schema = store_url
    raws = [
        (samples_dir / "domainaware+parsedmarc" / name).read_bytes()
        for name in ("smtp_tls.json", "mail.ru.json")
    ]
    await seed(url, schema, raws)
    ev = await evidence_in(url, schema, "example.com", date(2024, 1, 1), date(2024, 3, 1))
    assert {r.organization: r.sts_sessions for r in ev.reporters} == {
        "Example Inc.": 3,
        "Mail.ru": 1,
    }
    groups = {(g.organization, g.result_type, g.mx_host): g.sessions for g in ev.failures}
    assert groups == {
        ("Example Inc.", "validation-failure", "example.com"): 3,
        ("Mail.ru", "sts-policy-fetch-error", None): 2,  # its details overcount its summary
    }
    text = "version: STSv1\r\nmode: testing\r\nmx: example.com\r\nmax_age: 86400\r\n"
    snap = live_of("example.com", ("example.com",), text)
    now = datetime(2024, 3, 1, 12, tzinfo=UTC)
    advice = advise(ev, snap, candidate_policy(snap.policy), now=now)
    assert advice.verdict is Verdict.CANNOT_TELL
    impacts = {j.failure.organization: j.impact for j in advice.judged}
    assert impacts == {"Example Inc.": Impact.FIXED, "Mail.ru": Impact.NOT_AFFECTED}
    assert "known misreport" in next(
        j.why for j in advice.judged if j.failure.organization == "Mail.ru"
    )
    # a candidate naming another MX: the reported MX falls outside it
    narrow = candidate_policy(snap.policy, mx=("mx.example.com",))
    assert advise(ev, snap, narrow, now=now).verdict is Verdict.NOT_READY


def fortnight(
    domain: str, mx: tuple[str, ...], extra: dict[int, list[tuple[str, str, int]]]
) -> list[bytes]:
    """Two weeks of reports from two organisations; ``extra[i]``: failures on day i
    (0 = today) in Google's report."""
    out = []
    for i, day in enumerate(last_days(14)):
        out.append(
            own_report(domain, day, org="Google Inc.", ok=40, failures=extra.get(i, []), mx=mx)
        )
        if i < 10:
            out.append(own_report(domain, day, org="Microsoft Corporation", ok=25, mx=mx))
    return out


MX2 = ("mx1.d.test", "mx2.d.test")
POLICY = (
    "version: STSv1\r\nmode: testing\r\nmx: mx1.d.test\r\nmx: mx2.d.test\r\nmax_age: 604800\r\n"
)
SEEDED = [
    ("clean", {}, Verdict.READY, []),
    (
        "noisy",
        {
            3: [("certificate-not-trusted", "mx2.d.test", 1)],
            5: [("starttls-not-supported", "old-mx.d.test", 12)],
            6: [("sts-policy-fetch-error", "", 4)],
        },
        Verdict.READY,
        [Impact.NOISE, Impact.NOT_AFFECTED, Impact.NOISE],
    ),
    (
        "broken",
        {i: [("certificate-host-mismatch", "mx2.d.test", 6)] for i in range(14)},
        Verdict.NOT_READY,
        [Impact.BLOCKING],
    ),
]


@pytest.mark.parametrize(
    ("extra", "verdict", "impacts"), [c[1:] for c in SEEDED], ids=[c[0] for c in SEEDED]
)
async def test_seeded_with_our_own_reports(
    store_url: tuple[str, str | None],
    extra: dict[int, list[tuple[str, str, int]]],
    verdict: Verdict,
    impacts: list[Impact],
) -> None:
    url, schema = store_url
    await seed(url, schema, fortnight("d.test", MX2, extra))
    ev = await evidence_in(url, schema, "d.test", TODAY - timedelta(days=13), TODAY)
    assert ev.reports == 24
    assert ev.sts_sessions == 14 * 40 + 10 * 25 + sum(n for f in extra.values() for *_, n in f)
    snap = live_of("d.test", MX2, POLICY)
    advice = advise(ev, snap, candidate_policy(snap.policy), now=datetime.now(UTC))
    assert advice.verdict is verdict, advice.reasons
    assert sorted(j.impact for j in advice.judged) == sorted(impacts)
    if verdict is Verdict.NOT_READY:
        assert advice.blocked_by_organization() == {"Google Inc.": 84}
        assert advice.blocked_by_mx() == {"mx2.d.test": 84}


def _lab_target(lab: Lab) -> Target:
    return Target(
        nameserver=lab.nameserver,
        ca_file=lab.ca_file,
        https_port=lab.https_port,
        smtp_port=lab.smtp_port,
    )


def _domain(name: str, mx2: SmtpSpec) -> Scenario:
    base = healthy_domain(name, mx=(f"mx1.{name}", f"mx2.{name}"), mode="testing", max_age=604800)
    return replace(base, hosts=(base.hosts[0], HostSpec(f"mx2.{name}", mx2)))


@pytest.mark.lab
async def test_lab_end_to_end(lab_factory: LabFactory, tmp_path: Path) -> None:
    """A clean domain is READY; a domain whose second MX serves a certificate for another
    name, and whose reports show it, is NOT READY from both the reports and the live check."""
    lab = await lab_factory(
        _domain("clean.test", SmtpSpec()) + _domain("broken.test", SmtpSpec(cert="wrong-name"))
    )
    url = f"sqlite:///{tmp_path / 'store.db'}"
    broken = {i: [("certificate-host-mismatch", "mx2.broken.test", 9)] for i in range(14)}
    await seed(
        url,
        None,
        fortnight("clean.test", ("mx1.clean.test", "mx2.clean.test"), {})
        + fortnight("broken.test", ("mx1.broken.test", "mx2.broken.test"), broken),
    )
    clean, bad = await asyncio.gather(
        advise_domain(url, "clean.test", target=_lab_target(lab)),
        advise_domain(url, "broken.test", target=_lab_target(lab)),
    )
    assert clean.verdict is Verdict.READY, clean.reasons
    assert clean.candidate.mode.value == "enforce"
    assert "mode: enforce" in clean.policy_text
    assert clean.current_id == "1"
    assert clean.new_id != "1"
    assert bad.verdict is Verdict.NOT_READY
    assert [c.id for c in bad.live if c.outcome.value == "fail"] == ["mx-cert"]
    assert bad.blocked_by_mx() == {"mx2.broken.test": 126}

    # the command (in-process, in a thread: it runs its own event loop): --json and the
    # table, exit codes 0 and 2
    from click.testing import CliRunner

    from mtasts.cli.main import cli

    env = {**lab.env, "MTASTS_TLSRPT_STORE": url}
    for domain, code in (("clean.test", 0), ("broken.test", 2)):
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["advise", "--json", domain], env=env
        )
        assert result.exit_code == code, result.output
        doc = json.loads(result.output)
        assert doc["exit_code"] == code
        assert doc["verdict"] == ("READY" if code == 0 else "NOT READY")
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["advise", "broken.test"], env=env)
    assert "NOT READY" in result.output
    assert "certificate-host-mismatch" in result.output
    assert "id=" in result.output


@pytest.mark.lab
async def test_empty_store_cannot_tell(lab_factory: LabFactory, tmp_path: Path) -> None:
    """No reports at all: CANNOT TELL (exit 3), however healthy the live set-up."""
    lab = await lab_factory(healthy_domain("new.test", mode="testing"))
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    advice = await advise_domain(url, "new.test", target=_lab_target(lab))
    assert advice.verdict is Verdict.CANNOT_TELL
    assert advice.data.reports == 0
    assert int(advice.exit_code) == 3


def test_cli_usage_errors_exit_3() -> None:
    from click.testing import CliRunner

    from mtasts.cli.main import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["advise"]).exit_code == 3  # defect: no domain
    assert runner.invoke(cli, ["advise", "--days", "0", "d.test"]).exit_code == 3
    result = runner.invoke(cli, ["advise", "--days", "3", "--min-days", "7", "d.test"])
    assert result.exit_code == 3
    assert "min_days" in result.output


async def test_failure_groups_read_are_bounded_largest_first(
    store_url: tuple[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reporters choose MX names: the read keeps the largest groups and says it cut."""
    from mtasts.monitor import reported

    monkeypatch.setattr(reported, "MAX_FAILURE_GROUPS", 3)
    url, schema = store_url
    failures = [("certificate-not-trusted", f"h{i}.d.test", i + 1) for i in range(6)]
    await seed(url, schema, [own_report("d.test", TODAY, org="Many", ok=5, failures=failures)])
    ev = await evidence_in(url, schema, "d.test", TODAY, TODAY)
    assert ev.truncated
    assert [g.sessions for g in ev.failures] == [6, 5, 4]
