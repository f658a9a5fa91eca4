"""Policy vs the live MX set, and each MX's SMTP probe (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mtasts.check.evidence import CertFacts, Lookup, MxAnswer, SmtpProbe, TlsOutcome
from mtasts.check.finding import Severity
from mtasts.check.mxset import check_coverage, check_mx_answer, check_probe, mx_hosts
from mtasts.names import MxPattern
from mtasts.sts.policy import Mode, Policy

NOW = datetime(2026, 6, 1, tzinfo=UTC)
C, W, U, OK = Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN, Severity.OK


def policy(mode: Mode, *mx: str) -> Policy:
    return Policy(mode=mode, mx=tuple(MxPattern.parse(m) for m in mx), max_age=1209600)


@pytest.mark.parametrize(
    ("hosts", "pol", "expected"),
    [
        (("mx1.example.com",), policy(Mode.ENFORCE, "mx1.example.com"), [("mx.covered", OK)]),
        # a wildcard covers one label, any case
        (("MX2.Example.com",), policy(Mode.ENFORCE, "*.example.com"), [("mx.covered", OK)]),
        # defect: MX not covered under enforce -> mail refused
        (
            ("mx1.example.com", "backup.example.net"),
            policy(Mode.ENFORCE, "mx1.example.com"),
            [("mx.not-covered", C)],
        ),
        # under testing it is a warning (delivered, but reported)
        (
            ("backup.example.net",),
            policy(Mode.TESTING, "backup.example.net", "mx1.example.com"),
            [("policy.mx-unused", W)],
        ),
        (
            ("a.b.example.com",),
            policy(Mode.TESTING, "*.example.com"),
            [("mx.not-covered", W), ("policy.mx-unused", W)],
        ),
        # mode none: not covering is information only
        (
            ("mx9.example.com",),
            policy(Mode.NONE, "mx1.example.com"),
            [("mx.not-covered", OK), ("policy.mx-unused", W)],
        ),
    ],
)
def test_coverage(
    hosts: tuple[str, ...], pol: Policy, expected: list[tuple[str, Severity]]
) -> None:
    assert [(f.id, f.severity) for f in check_coverage(hosts, pol)] == expected


@pytest.mark.parametrize(
    ("answer", "hosts", "expected"),
    [
        (
            MxAnswer(Lookup.ANSWER, ((10, "mx1.example.com"), (20, "mx2.example.com"))),
            ("mx1.example.com", "mx2.example.com"),
            [],
        ),
        # implicit MX: the domain itself (RFC 5321 §5.1)
        (MxAnswer(Lookup.NODATA), ("example.com",), [("mx.implicit", W)]),
        # null MX (RFC 7505): no mail, nothing to protect
        (MxAnswer(Lookup.ANSWER, null_mx=True), (), [("mx.null", OK)]),
        (MxAnswer(Lookup.TIMEOUT), (), [("mx.dns-error", U)]),
    ],
)
def test_mx_answer(
    answer: MxAnswer, hosts: tuple[str, ...], expected: list[tuple[str, Severity]]
) -> None:
    assert mx_hosts(answer, "example.com") == hosts
    assert [(f.id, f.severity) for f in check_mx_answer(answer, "example.com")] == expected


GOOD_TLS = TlsOutcome(
    "TLSv1.3",
    CertFacts(
        "mx1.example.com",
        "CA",
        ("mx1.example.com",),
        NOW - timedelta(days=1),
        NOW + timedelta(days=90),
    ),
    chain_ok=True,
)
BASE = SmtpProbe("mx1.example.com", "192.0.2.25", 25)


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        (
            SmtpProbe("mx1.example.com", "192.0.2.25", 25, True, "ok", True, tls=GOOD_TLS),
            [("mx.tls", OK)],
        ),
        # defect: no STARTTLS in the EHLO answer
        (SmtpProbe("mx1.example.com", "192.0.2.25", 25, True, "ok", False), [("mx.starttls", C)]),
        # defect: STARTTLS advertised but refused
        (
            SmtpProbe("mx1.example.com", "192.0.2.25", 25, True, "ok", False, "454"),
            [("mx.starttls", C)],
        ),
        # never answers: cannot be determined from here
        (
            SmtpProbe("mx1.example.com", "192.0.2.25", 25, error="no answer", error_kind="timeout"),
            [("mx.unreachable", U)],
        ),
        # defect: the MX host has no address
        (
            SmtpProbe("mx1.example.com", error="no A or AAAA record", error_kind="dns"),
            [("mx.dns", C)],
        ),
        # defect: greeting is not SMTP
        (
            SmtpProbe(
                "mx1.example.com", "192.0.2.25", 25, True, error="greeting 554", error_kind="smtp"
            ),
            [("mx.smtp", C)],
        ),
    ],
)
def test_probe(probe: SmtpProbe, expected: list[tuple[str, Severity]]) -> None:
    findings = check_probe(probe, NOW)
    assert [(f.id, f.severity) for f in findings] == expected
    assert all(f.get("host") == "mx1.example.com" for f in findings)
