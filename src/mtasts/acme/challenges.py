"""The two challenges we answer, and tls-alpn-01 added to the ``acme`` library.

certbot's ``acme`` (5.x) dropped its tls-alpn-01 classes; the protocol objects are small
and the library is built to be extended, so the challenge and its (empty) response are
registered here the way the library registers its own. The validation certificate follows
RFC 8737 §3: self-signed, one dNSName (the name), and the critical acmeIdentifier
extension holding the SHA-256 digest of the key authorization.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier
from josepy import jwk

from mtasts.clock import UtcClock, utc_now

#: RFC 8737 §6.1: id-pe-acmeIdentifier
ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")


@challenges.ChallengeResponse.register
class TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """RFC 8737 §3: the response is an empty JSON object."""

    typ = "tls-alpn-01"


@challenges.Challenge.register
class TLSALPN01(challenges.KeyAuthorizationChallenge):
    """RFC 8737 tls-alpn-01."""

    response_cls = TLSALPN01Response
    typ = response_cls.typ

    def validation(self, account_key: jwk.JWK, **kwargs: Any) -> bytes:
        """The validation certificate and key (PEM) for ``kwargs['domain']``."""
        return validation_cert(str(kwargs["domain"]), self.key_authorization(account_key))


def validation_cert(name: str, key_authorization: str, *, clock: UtcClock = utc_now) -> bytes:
    """Private key + self-signed certificate PEM answering tls-alpn-01 for ``name``
    (valid from five minutes before ``clock()`` for a week)."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = clock()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        # the extension value is a DER OCTET STRING of the 32-byte digest
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem + cert.public_bytes(serialization.Encoding.PEM)
