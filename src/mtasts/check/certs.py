"""Checks of a TLS handshake and its certificate, shared by the policy host and the MXs.

RFC 8461 §3.3 (policy host) and §4.2 (MX): the certificate must chain to a trusted root,
be unexpired, and carry a DNS-ID (SAN dNSName) matching the host name, a wildcard only as
the whole left-most label. §7.2: TLS 1.2 or later. The chain is judged by the TLS
library during the probe (``TlsOutcome.chain_ok``); the name is judged here with the same
matcher the sender uses, so the two can never disagree.

Pure: no I/O, no clock (``now`` is an argument).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mtasts.check.evidence import CertFacts, TlsOutcome
from mtasts.check.finding import EvidenceValue, Finding, Severity
from mtasts.results import ResultType, verify_code_result
from mtasts.rfc3339 import utc_text
from mtasts.sts.match import certificate_matches

#: Warn when a certificate expires within this long (an ACME renewal that failed twice).
EXPIRY_WARNING = timedelta(days=14)

# OpenSSL X509_V_ERR_CERT_NOT_YET_VALID: a validation-failure to TLS-RPT, worded apart here.
_NOT_YET_VALID = 9

_TLS12 = ("TLSv1.2", "TLSv1.3")


def _cert_evidence(cert: CertFacts | None) -> dict[str, EvidenceValue]:
    if cert is None:
        return {}
    return {
        "subject": cert.subject,
        "issuer": cert.issuer,
        "dns_names": cert.dns_names,
        "not_before": utc_text(cert.not_before),
        "not_after": utc_text(cert.not_after),
    }


def check_tls(
    tls: TlsOutcome,
    host: str,
    now: datetime,
    *,
    area: str,
    rfc: str,
) -> list[Finding]:
    """Findings ``<area>.tls-version``, ``.tls-handshake``, ``.cert-expired``, ``.cert-untrusted``,
    ``.cert-name``, ``.cert-expiry`` and ``.tls`` (all good) for one handshake with ``host``."""
    ev: dict[str, EvidenceValue] = {"host": host, **_cert_evidence(tls.cert)}
    out: list[Finding] = []
    if tls.handshake_error and tls.cert is None:
        if tls.legacy_version:
            return [
                Finding.of(
                    f"{area}.tls-version",
                    Severity.CRITICAL,
                    f"{host} only speaks {tls.legacy_version}; MTA-STS requires TLS 1.2 or "
                    "later. Enable TLS 1.2 and 1.3 on it.",
                    "RFC 8461 §7.2",
                    tls_version=tls.legacy_version,
                    error=tls.handshake_error,
                    **ev,
                )
            ]
        return [
            Finding.of(
                f"{area}.tls-handshake",
                Severity.CRITICAL,
                f"the TLS handshake with {host} failed: {tls.handshake_error}",
                rfc,
                error=tls.handshake_error,
                **ev,
            )
        ]
    if tls.version and tls.version not in _TLS12:
        out.append(
            Finding.of(
                f"{area}.tls-version",
                Severity.CRITICAL,
                f"{host} negotiated {tls.version}; MTA-STS requires TLS 1.2 or later.",
                "RFC 8461 §7.2",
                tls_version=tls.version,
                **ev,
            )
        )
    cert = tls.cert
    if not tls.chain_ok:
        code = tls.chain_error_code
        expired = verify_code_result(code) is ResultType.CERTIFICATE_EXPIRED
        if expired or (cert is not None and cert.not_after < now):
            fid, what = "cert-expired", "has expired"
            if cert is not None:
                what += f" (on {cert.not_after:%Y-%m-%d})"
            hint = "Renew it."
        elif code == _NOT_YET_VALID:
            fid, what, hint = "cert-expired", "is not valid yet", "Check the server's clock."
        else:
            fid = "cert-untrusted"
            what = f"is not trusted: {tls.chain_error or 'verification failed'}"
            hint = "Serve a certificate from a public CA, with its intermediate certificates."
        out.append(
            Finding.of(
                f"{area}.{fid}",
                Severity.CRITICAL,
                f"the certificate of {host} {what}. {hint}",
                rfc,
                verify_error=tls.chain_error,
                verify_code=tls.chain_error_code,
                **ev,
            )
        )
    if cert is not None and not certificate_matches(host, cert.dns_names):
        names = ", ".join(cert.dns_names) or "no DNS names"
        out.append(
            Finding.of(
                f"{area}.cert-name",
                Severity.CRITICAL,
                f"the certificate of {host} is for {names}, not for {host}. Add {host} to "
                "its subject alternative names.",
                rfc,
                **ev,
            )
        )
    if cert is not None and tls.chain_ok and now <= cert.not_after < now + EXPIRY_WARNING:
        days = (cert.not_after - now).days
        out.append(
            Finding.of(
                f"{area}.cert-expiry",
                Severity.WARNING,
                f"the certificate of {host} expires in {days} day(s), on "
                f"{cert.not_after:%Y-%m-%d}. Check that its renewal works.",
                rfc,
                **ev,
            )
        )
    if not out:
        until = f", valid until {cert.not_after:%Y-%m-%d}" if cert else ""
        out.append(
            Finding.of(
                f"{area}.tls",
                Severity.OK,
                f"{host}: {tls.version or 'TLS'} with a trusted certificate for its name{until}",
                rfc,
                tls_version=tls.version,
                **ev,
            )
        )
    return out
