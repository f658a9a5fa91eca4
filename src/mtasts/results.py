"""TLS-RPT result and policy types (RFC 8460 §4.3, §4.4; IANA registry), and the one table
from a TLS failure to its result type.

Pure: no I/O. A failure mtasts raises knows its type through
:attr:`mtasts.errors.MtastsError.result_type`; a failure someone else saw (libtlsrpt's
code in a datagram, OpenSSL's verify error in a Postfix log line or in the checker's
handshake) is looked up in :data:`FAILURES`, so report writers never re-derive it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ResultType(StrEnum):
    """The "STARTTLS Validation Result Types" registry (RFC 8460 §4.3, §6.5)."""

    # §4.3.1 negotiation failures
    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    VALIDATION_FAILURE = "validation-failure"
    # §4.3.2 DANE / TLSA failures
    TLSA_INVALID = "tlsa-invalid"
    DNSSEC_INVALID = "dnssec-invalid"
    DANE_REQUIRED = "dane-required"
    # §4.3.3 MTA-STS failures
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    STS_POLICY_INVALID = "sts-policy-invalid"
    STS_WEBPKI_INVALID = "sts-webpki-invalid"

    @classmethod
    def parse(cls, text: str) -> ResultType | None:
        """The registered type named by ``text``, or ``None`` for an unregistered one."""
        try:
            return cls(text)
        except ValueError:
            return None


class PolicyType(StrEnum):
    """``policy-type`` values (RFC 8460 §4.4)."""

    TLSA = "tlsa"
    STS = "sts"
    NO_POLICY_FOUND = "no-policy-found"


#: RFC 8460 §4.3.1 negotiation failures (what an MTA sees talking to the MX).
NEGOTIATION_RESULTS = frozenset(
    {
        ResultType.STARTTLS_NOT_SUPPORTED,
        ResultType.CERTIFICATE_HOST_MISMATCH,
        ResultType.CERTIFICATE_EXPIRED,
        ResultType.CERTIFICATE_NOT_TRUSTED,
        ResultType.VALIDATION_FAILURE,
    }
)
#: RFC 8460 §4.3.2 DANE-specific policy failures.
DANE_RESULTS = frozenset(
    {ResultType.TLSA_INVALID, ResultType.DNSSEC_INVALID, ResultType.DANE_REQUIRED}
)
#: RFC 8460 §4.3.3 MTA-STS-specific policy failures.
STS_RESULTS = frozenset(
    {
        ResultType.STS_POLICY_FETCH_ERROR,
        ResultType.STS_POLICY_INVALID,
        ResultType.STS_WEBPKI_INVALID,
    }
)


@dataclass(frozen=True, slots=True)
class Failure:
    """One result type and the failures others report that imply it.

    ``libtlsrpt`` is the ``tlsrpt_failure_t`` code (libtlsrpt ``tlsrpt.h``) that Postfix
    3.10+ sends for it; ``openssl`` the ``X509_V_ERR_*`` codes with their
    ``X509_verify_cert_error_string`` texts (both the OpenSSL 1.1 and 3.x spellings) that
    mean it.
    """

    result_type: ResultType
    libtlsrpt: int
    openssl: tuple[tuple[int, str], ...] = ()


#: The one table. Anything not in it is a ``validation-failure`` (RFC 8460 §4.3.1: "a
#: general failure for a reason not matching a category above").
FAILURES: tuple[Failure, ...] = (
    Failure(ResultType.STARTTLS_NOT_SUPPORTED, 201),
    Failure(ResultType.CERTIFICATE_HOST_MISMATCH, 202, ((62, "hostname mismatch"),)),
    Failure(
        ResultType.CERTIFICATE_NOT_TRUSTED,
        203,
        (
            (2, "unable to get issuer certificate"),
            (18, "self-signed certificate"),  # also the prefix of 19's text
            (18, "self signed certificate"),  # OpenSSL 1.1
            (19, "self-signed certificate in certificate chain"),
            (20, "unable to get local issuer certificate"),
            (21, "unable to verify the first certificate"),
            (22, "certificate chain too long"),
            (27, "certificate not trusted"),
        ),
    ),
    Failure(ResultType.CERTIFICATE_EXPIRED, 204, ((10, "certificate has expired"),)),
    Failure(ResultType.VALIDATION_FAILURE, 205),
    Failure(ResultType.STS_POLICY_FETCH_ERROR, 301),
    Failure(ResultType.STS_POLICY_INVALID, 302),
    Failure(ResultType.STS_WEBPKI_INVALID, 303),
    Failure(ResultType.TLSA_INVALID, 304),
    Failure(ResultType.DNSSEC_INVALID, 305),
    Failure(ResultType.DANE_REQUIRED, 306),
)

#: libtlsrpt ``tlsrpt_failure_t`` -> result type, derived from :data:`FAILURES`.
LIBTLSRPT_CODES: dict[int, ResultType] = {f.libtlsrpt: f.result_type for f in FAILURES}
_VERIFY_CODES = {code: f.result_type for f in FAILURES for code, _ in f.openssl}
_VERIFY_TEXTS = tuple((text, f.result_type) for f in FAILURES for _, text in f.openssl)


def verify_code_result(code: int) -> ResultType:
    """The result type of an OpenSSL ``X509_V_ERR_*`` code (else validation-failure)."""
    return _VERIFY_CODES.get(code, ResultType.VALIDATION_FAILURE)


def verify_text_result(why: str) -> ResultType:
    """The result type of an OpenSSL verify error text, as Postfix logs it
    (``num=10:certificate has expired``), else validation-failure."""
    text = why.lower()
    for needle, result in _VERIFY_TEXTS:
        if needle in text:
            return result
    return ResultType.VALIDATION_FAILURE
