"""Policy host and policy findings from an HTTPS response (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mtasts.check.evidence import CertFacts, Lookup, PolicyResponse, TlsOutcome
from mtasts.check.finding import Severity
from mtasts.check.policyhost import check_policy_response

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HOST = "mta-sts.example.com"
POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 1209600\r\n"
GOOD_TLS = TlsOutcome(
    "TLSv1.3",
    CertFacts(HOST, "CA", (HOST,), NOW - timedelta(days=1), NOW + timedelta(days=90)),
    chain_ok=True,
)
GOOD = PolicyResponse(
    url=f"https://{HOST}/.well-known/mta-sts.txt",
    host=HOST,
    addresses=("192.0.2.1",),
    tls=GOOD_TLS,
    status=200,
    headers=(("content-type", "text/plain; charset=utf-8"),),
    body=POLICY,
    elapsed=0.1,
)


def problems(resp: PolicyResponse) -> list[tuple[str, Severity]]:
    findings, _ = check_policy_response(resp, NOW)
    return [(f.id, f.severity) for f in findings if f.severity is not Severity.OK]


C, W, U = Severity.CRITICAL, Severity.WARNING, Severity.UNKNOWN


@pytest.mark.parametrize(
    ("resp", "expected"),
    [
        (GOOD, []),
        # media type parameters and case do not matter (RFC 8461 §3.2, IMP-2818-a)
        (replace(GOOD, headers=(("Content-Type", "Text/Plain; Charset=US-ASCII"),)), []),
        # defect: no address for the policy host
        (
            replace(GOOD, address_outcome=Lookup.NXDOMAIN, error="no address", error_kind="dns"),
            [("policy-host.dns", C)],
        ),
        # DNS failure: UNKNOWN
        (
            replace(GOOD, address_outcome=Lookup.TIMEOUT, error="t", error_kind="dns"),
            [("policy-host.dns-error", U)],
        ),
        # defect: connection refused
        (
            replace(GOOD, tls=None, status=0, error="connection refused", error_kind="connect"),
            [("policy-host.connect", C)],
        ),
        # defect: slow host that never finishes
        (
            replace(GOOD, tls=None, status=0, error="no answer", error_kind="timeout"),
            [("policy-host.timeout", C)],
        ),
        # defect: redirect (never followed)
        (
            replace(
                GOOD, status=301, headers=(("location", "https://www.example.com/"),), body=b""
            ),
            [("policy-host.redirect", C)],
        ),
        # defect: 404
        (replace(GOOD, status=404, body=b""), [("policy-host.status", C)]),
        # defect: text/html
        (
            replace(GOOD, headers=(("content-type", "text/html"),)),
            [("policy-host.content-type", C)],
        ),
        # defect: no Content-Type
        (replace(GOOD, headers=()), [("policy-host.content-type", C)]),
        # defect: two Content-Type headers (nginx add_header)
        (
            replace(
                GOOD,
                headers=(
                    ("content-type", "text/plain"),
                    ("content-type", "application/octet-stream"),
                ),
            ),
            [("policy-host.content-type", C)],
        ),
        # defect: exotic charset
        (
            replace(GOOD, headers=(("content-type", "text/plain; charset=latin1"),)),
            [("policy-host.charset", W)],
        ),
        # defect: CDN may keep an old policy for a week
        (
            replace(GOOD, headers=(*GOOD.headers, ("cache-control", "public, max-age=604800"))),
            [("policy-host.caching", W)],
        ),
        # defect: body over 64 KB
        (replace(GOOD, body=b"#" * 65536, truncated=True), [("policy-host.size", C)]),
        # defect: slow but complete
        (replace(GOOD, elapsed=12.0), [("policy-host.slow", W)]),
        # defect: comment line in the policy
        (replace(GOOD, body=b"# my policy\r\n" + POLICY), [("policy.syntax", C)]),
        # defect: not UTF-8
        (replace(GOOD, body=b"version: STSv1\nmode: \xff\n"), [("policy.encoding", C)]),
        # defect: short max_age
        (replace(GOOD, body=POLICY.replace(b"1209600", b"3600")), [("policy.max_age.short", W)]),
    ],
)
def test_policy_response(resp: PolicyResponse, expected: list[tuple[str, Severity]]) -> None:
    assert problems(resp) == expected


def test_testing_and_none_modes_are_information_not_warnings() -> None:
    for mode in (b"testing", b"none"):
        body = POLICY.replace(b"enforce", mode)
        findings, policy = check_policy_response(replace(GOOD, body=body), NOW)
        assert policy is not None
        assert policy.mode.value == mode.decode()
        assert all(f.severity is Severity.OK for f in findings), findings


def test_certificate_problems_of_the_policy_host() -> None:
    wrong = replace(GOOD_TLS, cert=replace(GOOD_TLS.cert, dns_names=("www.example.com",)))  # type: ignore[arg-type]
    assert problems(replace(GOOD, tls=wrong)) == [("policy-host.cert-name", C)]
    expired = replace(
        GOOD_TLS, chain_ok=False, chain_error="certificate has expired", chain_error_code=10
    )
    assert problems(replace(GOOD, tls=expired)) == [("policy-host.cert-expired", C)]


def test_valid_policy_is_returned_with_evidence() -> None:
    findings, policy = check_policy_response(GOOD, NOW)
    assert policy is not None
    assert [str(p) for p in policy.mx] == ["mx1.example.com"]
    assert [f.id for f in findings] == ["policy-host.tls", "policy.valid"]
