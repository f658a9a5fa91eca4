"""The one place client SSLContexts are made (policy fetch, MX probes, report delivery).

Certificate verification and host-name checks are always on: MTA-STS exists to make
them mandatory (RFC 8461 §3.3 for the policy host, §4.2 for the MX). Only DNS-IDs
count: a certificate naming the host only in its subject CN is refused.
"""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path
from ssl import TLSVersion

from mtasts.errors import ConfigError


def client_context(
    ca_file: str | None = None, *, minimum_version: TLSVersion = TLSVersion.TLSv1_2
) -> ssl.SSLContext:
    """A verifying client context trusting ``ca_file`` (PEM) or, if None, the system store.

    ``minimum_version`` defaults to TLS 1.2 (RFC 8461 §4.2, RFC 8996). Asking for less
    also lowers OpenSSL's security level to 0, without which OpenSSL 3 refuses TLS 1.0
    and 1.1 whatever the minimum says; that is only for probing legacy hosts.
    """
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "no PEM certificate"
        raise ConfigError(
            f"CA file {ca_file}: {why}: name a PEM file of CA certificates "
            "(ca_file, MTASTS_CA_FILE or --ca-file), or none for the system store",
            code="config.ca-file",
        ) from exc
    if minimum_version < TLSVersion.TLSv1_2:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; a caller asking for them probes on purpose.
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = minimum_version
    ctx.check_hostname = True
    # RFC 8461 §3.3 and §4.2 name RFC 6125, which matches DNS-IDs only (subjectAltName
    # dNSName); OpenSSL would otherwise fall back to the subject CN of a certificate
    # without a dNSName SAN (RFC 9525 §6.3 removes that fallback too).
    ctx.hostname_checks_common_name = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def server_context(cert: str | Path, key: str | Path) -> ssl.SSLContext:
    """A server context: TLS 1.2+ (RFC 8461 §7.2, RFC 8996), the certificate chain ``cert``
    and its private ``key`` (PEM), checked now so a wrong file stops a service at start."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        why = exc.strerror if exc.strerror else str(exc)
        raise ConfigError(
            f"cannot load the certificate {cert} with the key {key}: {why}: give a PEM "
            "certificate chain and its unencrypted PEM private key",
            code="config.certificate",
        ) from exc
    return context
