"""TLS-RPT result and policy types (RFC 8460 §4.3, §4.4; IANA registry).

Pure: no I/O. Every failure in mtasts maps to one of these through
:attr:`mtasts.errors.MtastsError.result_type`, so report writers never re-derive it.
"""

from __future__ import annotations

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
