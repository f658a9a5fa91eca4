"""Enforce must not bounce mail: `check` makes an MX certificate close to expiry CRITICAL
under an enforce policy (a warning under testing), and `policy generate --mode enforce`
warns about every live MX that senders would refuse."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from mtasts.check.finding import Finding, Severity, Status
from mtasts.check.mxset import escalate_for_enforce
from mtasts.check.plugin import Thresholds, apply_thresholds
from mtasts.check.runner import Target, check_domain
from mtasts.cli.main import cli
from mtasts.lab import Lab, Scenario
from mtasts.lab.scenario import HostSpec, SmtpSpec
from mtasts.lab.testing import healthy_domain
from mtasts.sts.policy import parse_policy

LabFactory = Callable[[Scenario | str], Awaitable[Lab]]
NOW = datetime(2026, 12, 2, tzinfo=UTC)
ENFORCE = parse_policy("version: STSv1\nmode: enforce\nmx: mx.d.test\nmax_age: 1209600\n")
TESTING = replace(ENFORCE, mode=ENFORCE.mode.TESTING)


def expiry(days: float) -> Finding:
    when = (NOW + timedelta(days=days)).isoformat()
    return Finding.of(
        "mx.cert-expiry", Severity.WARNING, "expires soon.", host="mx.d.test", not_after=when
    )


@pytest.mark.parametrize(
    ("policy", "days", "severity"),
    [
        (ENFORCE, 3, Severity.CRITICAL),
        (ENFORCE, 6.9, Severity.CRITICAL),
        (ENFORCE, 7.5, Severity.WARNING),  # beyond a week: still only a warning
        (TESTING, 3, Severity.WARNING),  # testing: a lapse is reported, not refused
        (None, 3, Severity.WARNING),
    ],
)
def test_escalation_table(policy: object, days: float, severity: Severity) -> None:
    (f,) = escalate_for_enforce([expiry(days)], policy, NOW)  # type: ignore[arg-type]
    assert f.severity is severity
    other = Finding.of("mx.tls", Severity.OK, "fine", host="mx.d.test")
    assert escalate_for_enforce([other], policy, NOW) == [other]  # type: ignore[arg-type]


def test_thresholds_keep_the_enforce_escalation() -> None:
    (escalated,) = escalate_for_enforce([expiry(3)], ENFORCE, NOW)
    from mtasts.check.finding import DomainReport

    report = apply_thresholds(DomainReport("d.test", (escalated,)), NOW, Thresholds(14, 0))
    assert report.findings[0].severity is Severity.CRITICAL


def _target(lab: Lab) -> Target:
    return Target(
        nameserver=lab.nameserver,
        ca_file=lab.ca_file,
        https_port=lab.https_port,
        smtp_port=lab.smtp_port,
    )


@pytest.mark.lab
async def test_check_is_critical_under_enforce_only(lab_factory: LabFactory) -> None:
    lab = await lab_factory(
        healthy_domain("e.test", mode="enforce", max_age=1209600)
        + healthy_domain("t.test", mode="testing", max_age=1209600)
    )
    first = await check_domain("e.test", _target(lab))
    not_after = next(
        datetime.fromisoformat(str(f.get("not_after"))) for f in first.findings if f.id == "mx.tls"
    )
    later = not_after - timedelta(days=3)
    enforce, testing = await asyncio.gather(
        check_domain("e.test", _target(lab), now=later),
        check_domain("t.test", _target(lab), now=later),
    )
    e = next(f for f in enforce.findings if f.id == "mx.cert-expiry")
    assert e.severity is Severity.CRITICAL
    assert "mode enforce" in e.message
    assert enforce.status is Status.CRITICAL
    t = next(f for f in testing.findings if f.id == "mx.cert-expiry")
    assert t.severity is Severity.WARNING


@pytest.mark.lab
async def test_generate_enforce_warns_about_mx_senders_would_refuse(
    lab_factory: LabFactory,
) -> None:
    bad = healthy_domain("bad.test", mx=("mx1.bad.test", "mx2.bad.test"))
    bad = replace(bad, hosts=(bad.hosts[0], HostSpec("mx2.bad.test", SmtpSpec(starttls=False))))
    lab = await lab_factory(bad + healthy_domain("good.test", max_age=1209600))

    async def generate(domain: str, *extra: str) -> tuple[int, str, str]:
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            ["policy", "generate", "-d", domain, "--json", *extra],
            env={**lab.env, "MTASTS_CONFIG": ""},
        )
        return result.exit_code, result.stdout, result.stderr

    code, out, err = await generate("bad.test", "--mode", "enforce")
    assert code == 0, err  # a warning, not a refusal: the administrator decides
    warnings = json.loads(out)["warnings"]
    assert len(warnings) == 1
    assert "no STARTTLS at mx2.bad.test" in warnings[0]
    assert "mtasts: warning: no STARTTLS at mx2.bad.test" in err
    code, out, _ = await generate("good.test", "--mode", "enforce")
    assert (code, json.loads(out)["warnings"]) == (0, [])
    # testing refuses nothing: no probe, no warning
    code, out, _ = await generate("bad.test")
    assert (code, json.loads(out)["warnings"]) == (0, [])
