"""The lab's certificates: one trusted lab CA, an untrusted "other" CA, and every variant
(valid, expired, wrong-name, self-signed, untrusted, cn-only) as ready server SSLContexts."""

from __future__ import annotations

import datetime as dt
import ssl
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from mtasts.clock import UtcClock, utc_now
from mtasts.lab.scenario import CertKind, TlsVersionName

# "attacker": a certificate for the right name from the attacker's own CA.
IssuedKind = CertKind | Literal["attacker"]
WRONG_NAME = "wrong-name.lab.invalid"

_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def tls_version(name: TlsVersionName) -> ssl.TLSVersion | None:
    return _VERSIONS.get(name)


@dataclass(slots=True)
class LabPki:
    """Issues and caches certificates; writes the lab CA bundle to ``directory``."""

    directory: Path
    ca: trustme.CA = field(default_factory=trustme.CA)
    other_ca: trustme.CA = field(default_factory=trustme.CA)  # never trusted by clients
    attacker_ca: trustme.CA = field(default_factory=trustme.CA)  # the man in the middle's
    # the instant the hand-built certificates' validity is counted from (trustme's own
    # certificates read the wall clock themselves)
    clock: UtcClock = utc_now
    _cache: dict[tuple[str, str], tuple[bytes, bytes]] = field(default_factory=dict)

    @property
    def ca_file(self) -> Path:
        path = self.directory / "lab-ca.pem"
        if not path.exists():
            path.write_bytes(self.ca.cert_pem.bytes())
        return path

    def pem(self, name: str, kind: IssuedKind) -> tuple[bytes, bytes]:
        """(certificate chain PEM, private key PEM) of ``kind`` for ``name``."""
        key = (name, kind)
        if key not in self._cache:
            self._cache[key] = self._issue(name, kind)
        return self._cache[key]

    def _issue(self, name: str, kind: IssuedKind) -> tuple[bytes, bytes]:
        if kind == "self-signed":
            return _self_signed(name, self.clock())
        if kind == "cn-only":
            return _cn_only(self.ca, name, self.clock())
        ca, identity = self.ca, name
        not_after: dt.datetime | None = None
        not_before: dt.datetime | None = None
        if kind == "untrusted":
            ca = self.other_ca
        elif kind == "attacker":
            ca = self.attacker_ca
        elif kind == "wrong-name":
            identity = WRONG_NAME
        elif kind == "expired":
            now = self.clock()
            not_before, not_after = now - dt.timedelta(days=30), now - dt.timedelta(days=1)
        cert = ca.issue_cert(identity, not_before=not_before, not_after=not_after)
        chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
        return chain, cert.private_key_pem.bytes()

    def server_context(
        self,
        name: str,
        kind: IssuedKind,
        *,
        min_version: TlsVersionName = "",
        max_version: TlsVersionName = "",
        select: Callable[[str | None], ssl.SSLContext | None] | None = None,
    ) -> ssl.SSLContext:
        """A server context presenting ``kind`` for ``name``, restricted to the versions.

        Versions below TLS 1.2 need OpenSSL security level 0 (OpenSSL 3 refuses them by
        default); so does a client that wants to reach such a host.
        """
        ctx = _versioned(min_version, max_version)
        ctx.load_cert_chain(self._cert_file(name, kind))
        _on_sni(ctx, select)
        return ctx

    def lazy_server_context(
        self,
        name: str,
        kind: IssuedKind | Callable[[], IssuedKind],
        *,
        min_version: TlsVersionName = "",
        max_version: TlsVersionName = "",
    ) -> ssl.SSLContext:
        """A context with no certificate of its own: each handshake switches (in the SNI
        callback, which OpenSSL calls with or without SNI) to ``name``'s certificate of
        ``kind`` (or of the kind ``kind()`` names at that moment), issued and loaded on
        first use.

        What a client sees is what :meth:`server_context` gives; the certificate work is
        paid only by hosts that are contacted (a 10,000-domain lab starts in seconds).
        """
        built: dict[IssuedKind, ssl.SSLContext] = {}

        def select(_: str | None) -> ssl.SSLContext:
            want = kind() if callable(kind) else kind
            if want not in built:
                built[want] = self.server_context(
                    name, want, min_version=min_version, max_version=max_version
                )
            return built[want]

        ctx = _versioned(min_version, max_version)
        _on_sni(ctx, select)
        return ctx

    def _cert_file(self, name: str, kind: IssuedKind) -> Path:
        chain, key = self.pem(name, kind)
        cert_path = self.directory / f"{name}.{kind}.pem"
        if not cert_path.exists():
            cert_path.write_bytes(key + chain)
        return cert_path


def _versioned(min_version: TlsVersionName, max_version: TlsVersionName) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    low, high = tls_version(min_version), tls_version(max_version)
    if (low and low < ssl.TLSVersion.TLSv1_2) or (high and high < ssl.TLSVersion.TLSv1_2):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        low = low or ssl.TLSVersion.TLSv1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old TLS is the point here
        if low:
            ctx.minimum_version = low
        if high:
            ctx.maximum_version = high
    return ctx


def _on_sni(
    ctx: ssl.SSLContext, select: Callable[[str | None], ssl.SSLContext | None] | None
) -> None:
    def on_sni(
        obj: ssl.SSLObject | ssl.SSLSocket, name: str | None, current: ssl.SSLContext
    ) -> None:
        # The SNI a client sent is observable by tests (MX.received, policy_requests).
        obj.lab_sni = name  # type: ignore[union-attr]
        chosen = select(name) if select is not None else None
        if chosen is not None and chosen is not current:
            obj.context = chosen

    ctx.sni_callback = on_sni


def sni_of(obj: object) -> str | None:
    return getattr(obj, "lab_sni", None)


def _cn_only(ca: trustme.CA, name: str, now: dt.datetime) -> tuple[bytes, bytes]:
    """A certificate from the lab CA naming ``name`` only in its subject CN (no SAN).

    trustme always writes a subjectAltName, so this one is built by hand; a client that
    matches DNS-IDs only (RFC 6125 §6.4.4, RFC 9525 §6.3) must refuse it.
    """
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _self_signed(name: str, now: dt.datetime) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
