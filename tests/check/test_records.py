"""The `_mta-sts` and `_smtp._tls` record checks over DNS evidence (no I/O)."""

from __future__ import annotations

import pytest

from mtasts.check.evidence import Lookup, TxtAnswer
from mtasts.check.finding import Finding, Severity
from mtasts.check.records import check_sts_record, check_tlsrpt_record

STS = "_mta-sts.example.com"
RPT = "_smtp._tls.example.com"


def problems(findings: list[Finding]) -> list[str]:
    return [f.id for f in findings if f.severity is not Severity.OK]


def oks(findings: list[Finding]) -> list[str]:
    return [f.id for f in findings if f.severity is Severity.OK]


@pytest.mark.parametrize(
    ("answer", "expected_problems", "expected_ok"),
    [
        (TxtAnswer(STS, Lookup.ANSWER, ("v=STSv1; id=20240101",)), [], ["sts-record.valid"]),
        # other TXT records next to the STS record are discarded (RFC 8461 §3.1)
        (TxtAnswer(STS, Lookup.ANSWER, ("v=spf1 -all", "v=STSv1; id=1")), [], ["sts-record.valid"]),
        # defect: no record at all
        (TxtAnswer(STS, Lookup.NXDOMAIN), ["sts-record.missing"], []),
        # defect: only an SPF record at the name
        (TxtAnswer(STS, Lookup.ANSWER, ("v=spf1 -all",)), ["sts-record.missing"], []),
        # defect: two STS records -> senders ignore MTA-STS
        (
            TxtAnswer(STS, Lookup.ANSWER, ("v=STSv1; id=1", "v=STSv1; id=2")),
            ["sts-record.multiple"],
            [],
        ),
        # defect: id with a hyphen
        (TxtAnswer(STS, Lookup.ANSWER, ("v=STSv1; id=2024-01",)), ["sts-record.id.invalid"], []),
        # defect: lower-case version is not an STS record; the near miss is explained
        (
            TxtAnswer(STS, Lookup.ANSWER, ("v=stsv1; id=1",)),
            ["sts-record.not-sts", "sts-record.missing"],
            [],
        ),
        # DNS failure: not an answer, so UNKNOWN rather than "missing"
        (TxtAnswer(STS, Lookup.TIMEOUT, detail="timed out"), ["sts-record.dns-error"], []),
        # delegation by CNAME is legitimate (RFC 8461 §8.2)
        (
            TxtAnswer(STS, Lookup.ANSWER, ("v=STSv1; id=1",), cnames=("_mta-sts.provider.net",)),
            [],
            ["sts-record.cname", "sts-record.valid"],
        ),
        # defect: CNAME to a name that does not exist
        (
            TxtAnswer(STS, Lookup.NXDOMAIN, cnames=("_mta-sts.gone.net",)),
            ["sts-record.dangling-cname"],
            ["sts-record.cname"],
        ),
    ],
)
def test_sts_record(
    answer: TxtAnswer, expected_problems: list[str], expected_ok: list[str]
) -> None:
    findings = check_sts_record(answer)
    assert problems(findings) == expected_problems
    assert oks(findings) == expected_ok


def test_sts_record_published_at_the_wrong_name_is_named() -> None:
    apex = TxtAnswer("example.com", Lookup.ANSWER, ("v=spf1 -all", "v=STSv1; id=1"))
    underscore = TxtAnswer("_mta_sts.example.com", Lookup.NXDOMAIN)
    findings = check_sts_record(TxtAnswer(STS, Lookup.NXDOMAIN), [underscore, apex])
    assert problems(findings) == ["sts-record.wrong-name"]
    assert findings[0].get("found_at") == "example.com"
    assert findings[0].severity is Severity.CRITICAL


def test_sts_severities() -> None:
    assert check_sts_record(TxtAnswer(STS, Lookup.NXDOMAIN))[0].severity is Severity.CRITICAL
    assert check_sts_record(TxtAnswer(STS, Lookup.SERVFAIL))[0].severity is Severity.UNKNOWN


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (TxtAnswer(RPT, Lookup.ANSWER, ("v=TLSRPTv1; rua=mailto:tls@example.com",)), []),
        # missing: a warning, reports are optional
        (TxtAnswer(RPT, Lookup.NXDOMAIN), [("tlsrpt-record.missing", Severity.WARNING)]),
        # defect: two records -> no reports at all
        (
            TxtAnswer(
                RPT,
                Lookup.ANSWER,
                ("v=TLSRPTv1; rua=mailto:a@x.example", "v=TLSRPTv1; rua=mailto:b@x.example"),
            ),
            [("tlsrpt-record.multiple", Severity.CRITICAL)],
        ),
        # defect: no rua
        (
            TxtAnswer(RPT, Lookup.ANSWER, ("v=TLSRPTv1; foo=bar",)),
            [("tlsrpt-record.rua-missing", Severity.CRITICAL)],
        ),
        # DNS failure
        (TxtAnswer(RPT, Lookup.TIMEOUT), [("tlsrpt-record.dns-error", Severity.UNKNOWN)]),
    ],
)
def test_tlsrpt_record(answer: TxtAnswer, expected: list[tuple[str, Severity]]) -> None:
    findings = check_tlsrpt_record(answer)
    assert [(f.id, f.severity) for f in findings if f.severity is not Severity.OK] == expected


def test_tlsrpt_record_at_legacy_label_is_named() -> None:
    legacy = TxtAnswer(
        "_smtp-tlsrpt.example.com", Lookup.ANSWER, ("v=TLSRPTv1; rua=mailto:a@x.example",)
    )
    findings = check_tlsrpt_record(TxtAnswer(RPT, Lookup.NXDOMAIN), [legacy])
    assert problems(findings) == ["tlsrpt-record.wrong-name"]
