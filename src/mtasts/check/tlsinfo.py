"""TLS facts for the checker: the negotiated version, the certificate, the exact failure.

A sender's handshake stops at the first certificate problem and hides the certificate;
an administrator needs to see it anyway. So a probe first shakes hands verifying the
chain (not the name: that is judged afterwards with the MTA-STS matcher, see
``check.certs``), and when that fails, again without verification just to read the
certificate. A handshake that fails for another reason (no common protocol version) is
retried allowing TLS 1.0 only to say which old version the peer speaks.

I/O module (builds SSL contexts, reads SSL objects).
"""

from __future__ import annotations

import asyncio
import ssl
import warnings
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID

from mtasts.check.evidence import CertFacts, TlsOutcome
from mtasts.clock import utc_now
from mtasts.net.tls import client_context


def verifying_context(ca_file: str | Path | None) -> ssl.SSLContext:
    """PKIX chain verification, TLS 1.2+; the host name is checked by ``check.certs``."""
    context = client_context(str(ca_file) if ca_file else None)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def reading_context() -> ssl.SSLContext:
    """No verification, TLS 1.2+: only to read a certificate the verifier rejected."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def legacy_context() -> ssl.SSLContext:
    """No verification, TLS 1.0-1.1 only (client_context lowers the security level).

    Python deprecates naming these versions; probing for them is the point here, so the
    DeprecationWarning is silenced for this one context.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = client_context(minimum_version=ssl.TLSVersion.TLSv1)
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _name(name: x509.Name) -> str:
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns:
        value = cns[0].value
        return value if isinstance(value, str) else value.decode("latin-1")
    return name.rfc4514_string()


def cert_facts(der: bytes | None) -> CertFacts | None:
    """Read a DER certificate; ``None`` when absent or unreadable."""
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return None
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        names = tuple(
            cast(x509.SubjectAlternativeName, san.value).get_values_for_type(x509.DNSName)
        )
    except (x509.ExtensionNotFound, ValueError):
        names = ()
    return CertFacts(
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        dns_names=names,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=cert.subject == cert.issuer,
    )


def outcome_of(ssl_object: ssl.SSLObject | None, *, chain_ok: bool) -> TlsOutcome:
    if ssl_object is None:
        return TlsOutcome(handshake_error="no TLS session")
    return TlsOutcome(
        version=ssl_object.version() or "",
        cert=cert_facts(ssl_object.getpeercert(binary_form=True)),
        chain_ok=chain_ok,
    )


def with_chain_error(outcome: TlsOutcome, exc: ssl.SSLCertVerificationError) -> TlsOutcome:
    """``outcome`` (from the reading handshake) with the verifier's failure attached."""
    return TlsOutcome(
        version=outcome.version,
        cert=outcome.cert,
        chain_ok=False,
        chain_error=str(exc.verify_message or exc.reason or exc),
        chain_error_code=int(exc.verify_code or 0),
    )


def describe(exc: BaseException) -> str:
    """An SSL or socket error in a few words (``"unsupported protocol"``)."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return str(exc) or type(exc).__name__


async def hang_up(writer: asyncio.StreamWriter, seconds: float = 1.0) -> None:
    """Close a connection within ``seconds``, whatever the peer does.

    Closing TLS sends close_notify and waits for the peer's: asyncio waits up to 30 s,
    and a transport still waiting when the event loop ends is never closed (its socket
    leaks). A peer that has not answered within ``seconds`` is cut off.
    """
    writer.close()
    try:
        async with asyncio.timeout(seconds):
            await writer.wait_closed()
    except (OSError, TimeoutError, ssl.SSLError):
        writer.transport.abort()


now = utc_now  # the checker's clock (mtasts.clock)
