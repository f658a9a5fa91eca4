"""TLS/certificate findings from handshake evidence (no I/O): the same rules for the
policy host (RFC 8461 §3.3) and the MXs (§4.2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mtasts.check.certs import check_tls
from mtasts.check.evidence import CertFacts, TlsOutcome
from mtasts.check.finding import Severity

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HOST = "mx1.example.com"


def cert(*names: str, days_left: int = 300) -> CertFacts:
    return CertFacts(
        subject=names[0] if names else "x",
        issuer="Lab CA",
        dns_names=names,
        not_before=NOW - timedelta(days=30),
        not_after=NOW + timedelta(days=days_left),
    )


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        (TlsOutcome("TLSv1.3", cert(HOST), chain_ok=True), [("mx.tls", Severity.OK)]),
        # a wildcard covers exactly one label
        (TlsOutcome("TLSv1.2", cert("*.example.com"), chain_ok=True), [("mx.tls", Severity.OK)]),
        # defect: wildcard one level too high
        (
            TlsOutcome("TLSv1.3", cert("*.com"), chain_ok=True),
            [("mx.cert-name", Severity.CRITICAL)],
        ),
        # defect: certificate for another name
        (
            TlsOutcome("TLSv1.3", cert("www.example.com"), chain_ok=True),
            [("mx.cert-name", Severity.CRITICAL)],
        ),
        # defect: expires in 5 days: a warning while still valid
        (
            TlsOutcome("TLSv1.3", cert(HOST, days_left=5), chain_ok=True),
            [("mx.cert-expiry", Severity.WARNING)],
        ),
        # defect: expired (OpenSSL code 10) and for another name: both are reported
        (
            TlsOutcome(
                "TLSv1.3",
                cert("other.example", days_left=-1),
                chain_ok=False,
                chain_error="certificate has expired",
                chain_error_code=10,
            ),
            [("mx.cert-expired", Severity.CRITICAL), ("mx.cert-name", Severity.CRITICAL)],
        ),
        # defect: self-signed (OpenSSL code 18)
        (
            TlsOutcome(
                "TLSv1.3",
                cert(HOST),
                chain_ok=False,
                chain_error="self-signed",
                chain_error_code=18,
            ),
            [("mx.cert-untrusted", Severity.CRITICAL)],
        ),
        # defect: speaks only TLS 1.0
        (
            TlsOutcome(handshake_error="unsupported protocol", legacy_version="TLSv1"),
            [("mx.tls-version", Severity.CRITICAL)],
        ),
        # defect: handshake fails altogether
        (
            TlsOutcome(handshake_error="sslv3 alert handshake failure"),
            [("mx.tls-handshake", Severity.CRITICAL)],
        ),
    ],
)
def test_check_tls(tls: TlsOutcome, expected: list[tuple[str, Severity]]) -> None:
    findings = check_tls(tls, HOST, NOW, area="mx", rfc="RFC 8461 §4.2")
    assert [(f.id, f.severity) for f in findings] == expected


def test_expiry_evidence_is_rfc3339_utc() -> None:
    (finding,) = check_tls(
        TlsOutcome("TLSv1.3", cert(HOST), chain_ok=True), HOST, NOW, area="mx", rfc=""
    )
    assert finding.get("not_after") == "2027-03-28T00:00:00Z"
    assert finding.get("dns_names") == (HOST,)
    assert finding.get("tls_version") == "TLSv1.3"
