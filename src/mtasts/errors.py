"""One exception tree for mtasts, grouped by phase.

Each error says what failed in words a mail administrator can act on, cites the RFC
section, carries a stable machine-readable ``code`` (used by ``--json`` output), and
knows the TLS-RPT result type (RFC 8460 §4.3) it implies, so the code that writes
reports never re-derives it. TLS negotiation with an MX is Postfix's, not ours: its
failures reach us as libtlsrpt codes and OpenSSL verify errors, which the one table in
:mod:`mtasts.results` maps.

Pure: no I/O.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from mtasts.results import ResultType

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Notice:
    """One error or warning about an input: a stable ``code``, words, and the RFC section."""

    code: str
    message: str
    rfc: str = ""

    def to_json(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.rfc:
            out["rfc"] = self.rfc
        return out


@dataclass(frozen=True, slots=True)
class Linted(Generic[T]):
    """The outcome of checking one input: the value (if usable), its errors and warnings.

    ``value`` is ``None`` whenever ``errors`` is not empty.
    """

    value: T | None
    errors: tuple[Notice, ...] = ()
    warnings: tuple[Notice, ...] = field(default=())

    @property
    def valid(self) -> bool:
        return self.value is not None and not self.errors


class MtastsError(Exception):
    """Base of every error mtasts raises on purpose.

    ``code`` is stable (``area.what``); ``rfc`` names the section, e.g. ``"RFC 8461 §3.2"``.
    """

    default_code: ClassVar[str] = "error"
    default_rfc: ClassVar[str] = ""
    result_type: ClassVar[ResultType | None] = None

    def __init__(self, message: str, *, code: str | None = None, rfc: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.rfc = self.default_rfc if rfc is None else rfc

    def notice(self) -> Notice:
        return Notice(self.code, self.message, self.rfc)

    def __str__(self) -> str:
        return f"{self.message} ({self.rfc})" if self.rfc else self.message


class DomainNameError(MtastsError):
    """A domain name or MX pattern is not a valid RFC 5321 / IDNA name."""

    default_code = "name.invalid"
    default_rfc = "RFC 5321 §4.1.2"


# --- MTA-STS (RFC 8461) -------------------------------------------------------------


class StsRecordError(MtastsError):
    """The ``_mta-sts`` TXT record is an MTA-STS record but malformed.

    RFC 8461 §3.1: such a record is treated as absent, so it implies no result type.
    """

    default_code = "sts-record.invalid"
    default_rfc = "RFC 8461 §3.1"


class PolicyError(MtastsError):
    """The policy file was fetched but is not a valid policy (RFC 8461 §3.2)."""

    default_code = "policy.invalid"
    default_rfc = "RFC 8461 §3.2"
    result_type = ResultType.STS_POLICY_INVALID


class FetchError(MtastsError):
    """The policy could not be fetched over HTTPS (RFC 8461 §3.3)."""

    default_code = "fetch.failed"
    default_rfc = "RFC 8461 §3.3"
    result_type = ResultType.STS_POLICY_FETCH_ERROR


class WebPkiError(FetchError):
    """The policy host's certificate failed PKIX validation (RFC 8461 §3.3)."""

    default_code = "fetch.webpki"
    result_type = ResultType.STS_WEBPKI_INVALID


class DnsError(MtastsError):
    """A DNS lookup failed temporarily (SERVFAIL, timeout): not the same as "no record"."""

    default_code = "dns.failed"
    default_rfc = "RFC 8461 §3.3"


# --- TLS-RPT (RFC 8460) ----------------------------------------------------------------


class TlsRptError(MtastsError):
    """Anything about TLS reporting."""


class TlsRptRecordError(TlsRptError):
    """The ``_smtp._tls`` TXT record is a TLS-RPT record but malformed (RFC 8460 §3)."""

    default_code = "tlsrpt-record.invalid"
    default_rfc = "RFC 8460 §3"


class ReportError(TlsRptError):
    """A TLS-RPT report cannot be read (RFC 8460 §4), even tolerantly."""

    default_code = "report.invalid"
    default_rfc = "RFC 8460 §4"


class ReportTooLarge(ReportError):
    """A report (or its decompressed form) exceeds the configured size bound."""

    default_code = "report.too-large"


# --- configuration and lab -------------------------------------------------------------


class ConfigError(MtastsError):
    """A configuration or scenario file is wrong; the message names the key."""

    default_code = "config.invalid"


# --- the operator's environment (docs/exit-codes.md) --------------------------------------


class MissingDependency(MtastsError):
    """A feature needs an optional dependency that is not installed.

    The message names the feature and the exact command that installs the extra.
    """

    default_code = "install.missing-extra"

    def __init__(self, feature: str, extra: str, *, module: str = "") -> None:
        package = f" ({module})" if module else ""
        super().__init__(
            f"{feature} needs the optional dependency mtasts[{extra}]{package}: "
            f"install it with pip install 'mtasts[{extra}]'",
        )
        self.extra = extra


class ServiceUnavailable(MtastsError):
    """Something mtasts needs cannot be reached right now (a store, a cache, DNS, the
    daemon, a listening address taken by another process): the same command may
    succeed later."""

    default_code = "service.unavailable"


def listen_failed(address: str, exc: OSError) -> MtastsError:
    """Binding ``address`` (``host:port`` or ``unix:/path``) failed with ``exc``: one
    sentence naming the address and what to do. Taken by another process: that may pass
    (ServiceUnavailable); anything else is the configuration's (ConfigError)."""
    why = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        return ServiceUnavailable(
            f"cannot listen on {address}: the address is already in use (another mtasts or "
            "another server holds it): stop that one, or choose another address",
            code="listen.in-use",
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        hint = "this host has no such address: choose one of its own"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = "ports below 1024 need root or CAP_NET_BIND_SERVICE; a socket, a writable directory"
    elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
        hint = "the socket's directory does not exist: create it"
    else:
        hint = "check the address"
    return ConfigError(f"cannot listen on {address}: {why}: {hint}", code="config.listen")
