"""Monitoring-plugin output of ``mtasts check`` (pure): expiry thresholds, the status line,
performance data. Reports are built from findings as the checker makes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mtasts.check.finding import DomainReport, Finding, Severity, Status
from mtasts.check.plugin import (
    Thresholds,
    apply_thresholds,
    certificate_days,
    mx_count,
    status_lines,
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def tls(area: str, host: str, days: float, *, severity: Severity = Severity.OK) -> Finding:
    fid = f"{area}.tls" if severity is Severity.OK else f"{area}.cert-expiry"
    return Finding.of(
        fid, severity, "...", "RFC", host=host, not_after=(NOW + timedelta(days=days)).isoformat()
    )


def report(*findings: Finding, domain: str = "example.com") -> DomainReport:
    return DomainReport(domain, findings)


@pytest.mark.parametrize(
    ("days", "limits", "expected"),
    [
        (20, Thresholds(), Severity.OK),
        (13.9, Thresholds(), Severity.WARNING),  # the checker's own 14 days, unchanged
        (20, Thresholds(warning_days=30), Severity.WARNING),
        (20, Thresholds(warning_days=30, critical_days=21), Severity.CRITICAL),
        (21, Thresholds(warning_days=30, critical_days=21), Severity.WARNING),
        (0.5, Thresholds(warning_days=0), Severity.OK),
    ],
)
def test_thresholds_grade_certificate_expiry(
    days: float, limits: Thresholds, expected: Severity
) -> None:
    for area in ("policy-host", "mx"):
        graded = apply_thresholds(report(tls(area, "h.example.com", days)), NOW, limits)
        (finding,) = graded.findings
        assert finding.severity is expected
        if expected is not Severity.OK:
            assert finding.id == f"{area}.cert-expiry"
            assert "h.example.com" in finding.message


def test_a_checker_warning_beyond_a_lower_threshold_becomes_ok() -> None:
    warned = report(tls("mx", "mx1.example.com", 10, severity=Severity.WARNING))
    (finding,) = apply_thresholds(warned, NOW, Thresholds(warning_days=7)).findings
    assert (finding.id, finding.severity) == ("mx.cert-expiry", Severity.OK)
    assert apply_thresholds(warned, NOW, Thresholds(warning_days=7)).status is Status.OK


def test_other_findings_and_expired_certificates_are_left_alone() -> None:
    expired = Finding.of(
        "mx.cert-expired",
        Severity.CRITICAL,
        "...",
        host="m",
        not_after=(NOW - timedelta(days=2)).isoformat(),
    )
    other = Finding.of("policy.valid", Severity.OK, "...")
    graded = apply_thresholds(report(expired, other), NOW, Thresholds(warning_days=100))
    assert graded.findings == (expired, other)


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="--critical-days 5"):
        Thresholds(warning_days=4, critical_days=5)


def test_days_per_host_are_the_soonest_over_its_addresses() -> None:
    r = report(
        tls("policy-host", "mta-sts.example.com", 80.5),
        tls("mx", "mx1.example.com", 60.2),
        tls("mx", "mx1.example.com", 30.9),  # its second address
        tls("mx", "mx2.example.com", -1.5),
    )
    days = {(c.area, c.host): c.days for c in certificate_days(r, NOW)}
    assert days == {
        ("policy-host", "mta-sts.example.com"): 80,
        ("mx", "mx1.example.com"): 30,
        ("mx", "mx2.example.com"): -2,
    }
    assert mx_count(r) == 2


def test_mx_count_when_the_mx_set_is_unknown_or_null() -> None:
    lookup_failed = Finding.of("mx.dns-error", Severity.UNKNOWN, "...", domain="example.com")
    assert mx_count(report(lookup_failed)) is None
    assert mx_count(report(Finding.of("domain.not-found", Severity.CRITICAL, "..."))) is None
    assert mx_count(report(Finding.of("mx.null", Severity.OK, "..."))) == 0
    address_failed = Finding.of("mx.dns-error", Severity.UNKNOWN, "...", host="mx9.example.com")
    assert mx_count(report(address_failed)) == 1


def test_status_line_with_performance_data() -> None:
    r = report(
        tls("policy-host", "mta-sts.example.com", 80.5),
        tls("mx", "mx1.example.com", 60.2),
        Finding.of("policy.valid", Severity.OK, "..."),
    )
    assert status_lines([r], NOW, Thresholds()) == [
        "MTA-STS OK - example.com OK, 1 MX, certificates valid 60+ days | "
        "'mta-sts.example.com policy host cert days'=80;14:;0: "
        "'mx1.example.com mx cert days'=60;14:;0: "
        "'example.com mx count'=1;;;0"
    ]


def test_status_line_names_the_problems_and_lists_them_after_it() -> None:
    bad = report(
        tls("mx", "mx1.bad.example", 5),
        Finding.of("tlsrpt-record.missing", Severity.WARNING, "no record | none"),
        domain="bad.example",
    )
    good = report(tls("mx", "mx1.example.com", 60))
    limits = Thresholds(warning_days=30, critical_days=7)
    graded = [apply_thresholds(r, NOW, limits) for r in (good, bad)]
    first, *rest = status_lines(graded, NOW, limits)
    head, _, perf = first.partition(" | ")
    assert head == (
        "MTA-STS CRITICAL - example.com OK, 1 MX, certificates valid 60+ days; "
        "bad.example CRITICAL (mx.cert-expiry, tlsrpt-record.missing)"
    )
    assert perf == (
        "'mx1.example.com mx cert days'=60;30:;7: 'example.com mx count'=1;;;0 "
        "'mx1.bad.example mx cert days'=5;30:;7: 'bad.example mx count'=1;;;0"
    )
    assert rest[0].startswith("CRITICAL bad.example mx.cert-expiry: the certificate of mx1.bad")
    assert rest[1] == "WARNING bad.example tlsrpt-record.missing: no record / none"


def test_no_performance_data_when_nothing_was_measured() -> None:
    r = report(Finding.of("domain.not-found", Severity.CRITICAL, "gone"))
    assert status_lines([r], NOW, Thresholds()) == [
        "MTA-STS CRITICAL - example.com CRITICAL (domain.not-found)",
        "CRITICAL example.com domain.not-found: gone",
    ]
