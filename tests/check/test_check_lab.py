"""`mtasts check` against lab scenarios: each defect yields exactly its finding.

Real DNS, HTTPS and SMTP servers on loopback (mtasts.lab); nothing is mocked.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from mtasts.check.finding import DomainReport, Severity, Status
from mtasts.check.runner import Limits, Target, check_domain
from mtasts.lab import Lab, Scenario
from mtasts.lab.scenario import DnsSpec, PolicyHostSpec, SmtpSpec
from mtasts.lab.testing import LabPool, healthy_domain, policy_text

pytestmark = pytest.mark.lab

LabFactory = Callable[[Scenario | str], Awaitable[Lab]]
MAX_AGE = 1209600  # two weeks: no max_age advice in the healthy case


@pytest.fixture
async def lab_factory() -> AsyncIterator[LabFactory]:
    async with LabPool() as pool:
        yield pool.start


def target(lab: Lab, **limits: float) -> Target:
    return Target(
        nameserver=lab.nameserver,
        ca_file=lab.ca_file,
        https_port=lab.https_port,
        smtp_port=lab.smtp_port,
        limits=Limits(**limits),
    )


def domain(name: str = "d.test", *, smtp: SmtpSpec | None = None, **changes: object) -> Scenario:
    """A healthy domain with ``changes`` applied to its DomainSpec."""
    base = healthy_domain(name, max_age=MAX_AGE, smtp=smtp)
    return replace(base, domains=(replace(base.domains[0], **changes),))  # type: ignore[arg-type]


def problems(report: DomainReport) -> list[str]:
    return [f.id for f in report.findings if f.severity is not Severity.OK]


HOST = PolicyHostSpec
CASES: list[tuple[str, Scenario, list[str], Status]] = [
    ("healthy", domain(), [], Status.OK),
    ("no record", domain(sts=None), ["sts-record.missing"], Status.CRITICAL),
    (
        "two records",
        domain(sts=(("v=STSv1; id=1",), ("v=STSv1; id=2",))),
        ["sts-record.multiple"],
        Status.CRITICAL,
    ),
    (
        "redirect",
        domain(policy_host=HOST(redirect_to="https://www.d.test/mta-sts.txt")),
        ["policy-host.redirect"],
        Status.CRITICAL,
    ),
    (
        "wrong content-type",
        domain(policy_host=HOST(content_type="text/html")),
        ["policy-host.content-type"],
        Status.CRITICAL,
    ),
    (
        "expired policy-host certificate",
        domain(policy_host=HOST(cert="expired")),
        ["policy-host.cert-expired"],
        Status.CRITICAL,
    ),
    (
        "wrong-name policy-host certificate",
        domain(policy_host=HOST(cert="wrong-name")),
        ["policy-host.cert-name"],
        Status.CRITICAL,
    ),
    (
        # RFC 8461 §3.3: DNS-IDs only; the right name in the subject CN is not enough.
        "CN-only policy-host certificate",
        domain(policy_host=HOST(cert="cn-only")),
        ["policy-host.cert-name"],
        Status.CRITICAL,
    ),
    (
        "MX not covered",
        domain(
            mx=("mx1.d.test", "mx2.d.test"),
            policy=policy_text(("mx1.d.test",), max_age=MAX_AGE),
        ),
        ["mx.not-covered"],
        Status.CRITICAL,
    ),
    (
        "MX without STARTTLS",
        domain(smtp=SmtpSpec(starttls=False)),
        ["mx.starttls"],
        Status.CRITICAL,
    ),
    (
        "MX wrong-name certificate",
        domain(smtp=SmtpSpec(cert="wrong-name")),
        ["mx.cert-name"],
        Status.CRITICAL,
    ),
    (
        "MX CN-only certificate",  # RFC 8461 §4.2 / RFC 6125: DNS-IDs only
        domain(smtp=SmtpSpec(cert="cn-only")),
        ["mx.cert-name"],
        Status.CRITICAL,
    ),
    (
        "MX expired certificate",
        domain(smtp=SmtpSpec(cert="expired")),
        ["mx.cert-expired"],
        Status.CRITICAL,
    ),
    (
        "MX untrusted certificate",
        domain(smtp=SmtpSpec(cert="self-signed")),
        ["mx.cert-untrusted"],
        Status.CRITICAL,
    ),
    (
        "TLS 1.0-only MX",
        domain(smtp=SmtpSpec(tls_max_version="1.0")),
        ["mx.tls-version"],
        Status.CRITICAL,
    ),
    (
        "broken TLS-RPT record",
        domain(tlsrpt=(("v=TLSRPTv1; rua=ftp://reports.d.test/",),)),
        ["tlsrpt-record.rua-scheme"],
        Status.CRITICAL,
    ),
    ("no TLS-RPT record", domain(tlsrpt=None), ["tlsrpt-record.missing"], Status.WARNING),
    ("MX never answers", domain(smtp=SmtpSpec(listen=False)), ["mx.unreachable"], Status.UNKNOWN),
    (
        "policy host sends gigabytes",
        domain(policy_host=HOST(endless=True)),
        ["policy-host.size"],
        Status.CRITICAL,
    ),
    (
        "policy in testing mode",
        domain(policy=policy_text(("mx1.d.test",), mode="testing", max_age=MAX_AGE)),
        [],
        Status.OK,
    ),
]


@pytest.mark.parametrize(
    ("scenario", "expected", "status"),
    [pytest.param(s, e, st, id=name) for name, s, e, st in CASES],
)
async def test_each_defect_gives_exactly_its_finding(
    lab_factory: LabFactory, scenario: Scenario, expected: list[str], status: Status
) -> None:
    lab = await lab_factory(scenario)
    report = await check_domain("d.test", target(lab))
    assert problems(report) == expected, [(f.id, f.message) for f in report.findings]
    assert report.status is status


async def test_healthy_domain_reports_what_was_verified(lab_factory: LabFactory) -> None:
    lab = await lab_factory(domain())
    report = await check_domain("D.Test.", target(lab))
    assert report.domain == "d.test"
    assert report.ids() == (
        "sts-record.valid",
        "policy-host.tls",
        "policy.valid",
        "mx.covered",
        "mx.tls",
        "tlsrpt-record.valid",
    )
    mx_tls = next(f for f in report.findings if f.id == "mx.tls")
    assert mx_tls.get("tls_version") in ("TLSv1.2", "TLSv1.3")
    assert mx_tls.get("dns_names") == ("mx1.d.test",)


async def test_nonexistent_domain_is_critical(lab_factory: LabFactory) -> None:
    lab = await lab_factory(domain())
    report = await check_domain("nowhere.test", target(lab))
    assert problems(report) == ["domain.not-found"]
    assert report.status is Status.CRITICAL


async def test_dns_timeout_is_unknown_within_the_dns_deadline(lab_factory: LabFactory) -> None:
    scenario = domain() + Scenario(dns=(DnsSpec("_mta-sts.d.test", fault="timeout"),))
    lab = await lab_factory(scenario)
    started = time.monotonic()
    report = await check_domain("d.test", target(lab, dns=1.0))
    assert time.monotonic() - started < 5
    assert problems(report) == ["sts-record.dns-error"]
    assert report.status is Status.UNKNOWN


async def test_record_at_the_wrong_name(lab_factory: LabFactory) -> None:
    scenario = domain(sts=None) + Scenario(
        dns=(DnsSpec("_mta_sts.d.test", txt=(("v=STSv1; id=1",),)),)
    )
    lab = await lab_factory(scenario)
    report = await check_domain("d.test", target(lab))
    assert problems(report) == ["sts-record.wrong-name"]


async def test_mx_probes_run_in_parallel(lab_factory: LabFactory) -> None:
    """Three MXs cost about the time of one: the slowest, not the sum."""
    mx = ("mx1.d.test", "mx2.d.test", "mx3.d.test")
    lab = await lab_factory(domain(mx=mx, policy=policy_text(mx, max_age=MAX_AGE)))
    report = await check_domain("d.test", target(lab))
    assert problems(report) == []
    assert [f.get("host") for f in report.findings if f.id == "mx.tls"] == list(mx)


@pytest.mark.parametrize(
    ("policy_host", "expected"),
    [
        # defect: the policy host only speaks TLS 1.0
        (PolicyHostSpec(tls_max_version="1.0"), ["policy-host.tls-version"]),
        # defect: untrusted (self-signed) certificate
        (PolicyHostSpec(cert="self-signed"), ["policy-host.cert-untrusted"]),
        # defect: headers never come (slow host), bounded by the HTTPS deadline
        (PolicyHostSpec(delay_ms=5000), ["policy-host.timeout"]),
        # defect: port closed
        (PolicyHostSpec(listen=False), ["policy-host.connect"]),
    ],
)
async def test_policy_host_transport_failures(
    lab_factory: LabFactory, policy_host: PolicyHostSpec, expected: list[str]
) -> None:
    lab = await lab_factory(domain(policy_host=policy_host))
    started = time.monotonic()
    report = await check_domain("d.test", target(lab, https=1.0))
    assert time.monotonic() - started < 4
    assert problems(report) == expected
    assert report.status is Status.CRITICAL
