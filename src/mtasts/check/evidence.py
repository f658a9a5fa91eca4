"""What the checker collected from the outside world, as plain values.

The I/O modules (``fetch``, ``probe``, ``runner``) fill these in; the pure checks turn them
into findings. Keeping the evidence as data is what lets every check be tested in a table
without a network, and lets ``--json`` show exactly what a finding rests on.

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Lookup(StrEnum):
    """How a DNS question ended."""

    ANSWER = "answer"  # records of the asked type were returned
    NXDOMAIN = "nxdomain"  # the name does not exist
    NODATA = "nodata"  # the name exists, but has no record of that type
    TIMEOUT = "timeout"  # no answer in time
    SERVFAIL = "servfail"  # the servers failed (or another temporary error)


@dataclass(frozen=True, slots=True)
class TxtAnswer:
    """A TXT lookup: each record's character-strings joined with no separator (RFC 7208 §3.3)."""

    name: str
    outcome: Lookup
    records: tuple[str, ...] = ()
    # CNAMEs followed on the way, in order (``_mta-sts.example.com`` -> ``_mta-sts.provider``).
    cnames: tuple[str, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MxAnswer:
    """The domain's MX set, in preference order; ``hosts`` are normalised names."""

    outcome: Lookup
    hosts: tuple[tuple[int, str], ...] = ()
    null_mx: bool = False  # RFC 7505 "0 ." : the domain accepts no mail
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CertFacts:
    """Facts about a presented leaf certificate (read without trusting it)."""

    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    self_signed: bool = False


@dataclass(frozen=True, slots=True)
class TlsOutcome:
    """A TLS handshake: the version, the certificate, and whether/why verification failed.

    ``chain_error`` is the verifier's own words (``"certificate has expired"``); the host
    name is checked separately against ``cert.dns_names`` with the MTA-STS rules, so a
    certificate that is both expired and for the wrong name shows both problems.
    """

    version: str = ""  # "TLSv1.3"
    cert: CertFacts | None = None
    chain_ok: bool = False
    chain_error: str = ""
    chain_error_code: int = 0
    handshake_error: str = ""  # the handshake itself failed (protocol version, alert ...)
    legacy_version: str = ""  # version spoken when only a pre-1.2 handshake worked


@dataclass(frozen=True, slots=True)
class PolicyResponse:
    """The HTTPS GET of ``https://mta-sts.<domain>/.well-known/mta-sts.txt``.

    ``error`` is set when no HTTP response was obtained (DNS, connect, TLS, timeout);
    ``body`` holds at most ``body_limit`` bytes and ``truncated`` says the host sent more.
    """

    url: str
    host: str
    addresses: tuple[str, ...] = ()
    address_outcome: Lookup = Lookup.ANSWER
    tls: TlsOutcome | None = None
    status: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    truncated: bool = False
    elapsed: float = 0.0
    error: str = ""
    error_kind: str = ""  # "dns" | "connect" | "tls" | "timeout" | "http"

    def header_values(self, name: str) -> tuple[str, ...]:
        wanted = name.lower()
        return tuple(v for k, v in self.headers if k.lower() == wanted)


@dataclass(frozen=True, slots=True)
class SmtpProbe:
    """One STARTTLS probe of one MX host at one address."""

    host: str
    address: str = ""
    port: int = 25
    connected: bool = False
    banner: str = ""
    starttls_offered: bool = False
    starttls_reply: str = ""
    tls: TlsOutcome | None = None
    error: str = ""
    error_kind: str = ""  # "dns" | "connect" | "timeout" | "smtp" | "tls"
    elapsed: float = 0.0
