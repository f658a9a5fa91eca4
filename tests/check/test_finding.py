"""The finding model: severities add up to a monitoring-plugin status; JSON shape."""

from __future__ import annotations

import pytest

from mtasts.check.finding import DomainReport, Finding, Severity, Status, worst_status

OK, WARN, CRIT, UNKN = Severity.OK, Severity.WARNING, Severity.CRITICAL, Severity.UNKNOWN


@pytest.mark.parametrize(
    ("severities", "status"),
    [
        ((), Status.OK),  # nothing found is OK
        ((OK, OK), Status.OK),
        ((OK, WARN), Status.WARNING),
        ((WARN, UNKN), Status.UNKNOWN),  # an unchecked part may be worse than a warning
        ((UNKN, CRIT), Status.CRITICAL),  # a proven failure beats "could not check"
        ((CRIT, WARN, OK), Status.CRITICAL),
    ],
)
def test_domain_status_is_the_worst_severity(
    severities: tuple[Severity, ...], status: Status
) -> None:
    report = DomainReport(
        "example.com", tuple(Finding(f"x.{i}", s, "m") for i, s in enumerate(severities))
    )
    assert report.status is status


def test_status_values_are_monitoring_plugin_exit_codes() -> None:
    assert [int(s) for s in (Status.OK, Status.WARNING, Status.CRITICAL, Status.UNKNOWN)] == [
        0,
        1,
        2,
        3,
    ]
    assert worst_status([Status.WARNING, Status.UNKNOWN, Status.OK]) is Status.UNKNOWN
    assert worst_status([]) is Status.OK


def test_json_carries_domain_status_and_findings_with_evidence() -> None:
    finding = Finding.of(
        "sts-record.multiple", CRIT, "two records", "RFC 8461 §3.1", records=("a", "b")
    )
    out = DomainReport("example.com", (finding,)).to_json()
    assert out == {
        "domain": "example.com",
        "status": "CRITICAL",
        "exit_code": 2,
        "findings": [
            {
                "id": "sts-record.multiple",
                "severity": "critical",
                "message": "two records",
                "evidence": {"records": ["a", "b"]},
                "rfc": "RFC 8461 §3.1",
            }
        ],
    }
    assert finding.get("records") == ("a", "b")
    assert finding.get("absent") is None
