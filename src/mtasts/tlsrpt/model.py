"""The TLS-RPT report as values (RFC 8460 §4.4), in snake_case.

Pure: frozen, slotted dataclasses with tuple fields, checked when built. The hyphenated
JSON of the RFC lives only in :mod:`mtasts.tlsrpt.report` (writer) and
:mod:`mtasts.tlsrpt.reader` (tolerant reader).

``result_type`` stays a ``str`` so an unregistered type (the IANA registry can grow,
RFC 8460 §6.5) survives a read; :meth:`ResultType.parse` tells whether it is registered.
Date-times are normalised to UTC on construction.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from mtasts.errors import ReportError
from mtasts.results import PolicyType

# I-JSON (RFC 7493 §2.2): integers beyond ±(2**53 - 1) do not survive every JSON reader.
MAX_COUNT = 2**53 - 1


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReportError(f"{name} must be an integer, not {value!r}", code="report.count.type")
    if value < 0:
        raise ReportError(f"{name} is negative ({value})", code="report.count.negative")
    if value > MAX_COUNT:
        raise ReportError(
            f"{name} is {value}, above the I-JSON limit 2^53-1", code="report.count.too-large"
        )


# A report names the same few addresses over and over, and the reader and the model both
# ask (a parse costs ~5 µs): the answers of the last 4,096 texts are kept.
@lru_cache(maxsize=4096)
def canonical_ip(text: str) -> str | None:
    """RFC 8460 §4.4 ``ip-address`` text of ``text``, or None if it is no IP address.

    IPv4 as a dotted quad; IPv6 in RFC 5952 form, with an IPv4-mapped address written
    ``::ffff:192.0.2.10`` (RFC 5952 §5) and no zone index (not in the RFC 8460 ABNF).
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            address = ipaddress.IPv6Address(int(address))
        if address.ipv4_mapped is not None:
            return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _check_strings(name: str, values: tuple[str, ...]) -> None:
    if isinstance(values, tuple):
        for v in values:  # (a loop: all() over a generator costs twice as much)
            if not isinstance(v, str):
                break
        else:
            return
    raise ReportError(f"{name} must be a tuple of strings", code="report.shape")


@dataclass(frozen=True, slots=True)
class FailureDetail:
    """One ``failure-details`` entry: a result type, where it happened, how often.

    An IP address in ``sending_mta_ip`` / ``receiving_ip`` is kept in its canonical text
    (:func:`canonical_ip`); other text (which a tolerant read may keep) stays as it is
    and is never written (:mod:`mtasts.tlsrpt.report`).
    """

    result_type: str
    sending_mta_ip: str | None
    receiving_mx_hostname: str | None
    receiving_mx_helo: str | None
    receiving_ip: str | None
    failed_session_count: int
    additional_information: str | None
    failure_reason_code: str | None

    def __post_init__(self) -> None:
        if not isinstance(self.result_type, str) or not self.result_type:
            raise ReportError("result-type must be a non-empty string", code="report.shape")
        _check_count("failed-session-count", self.failed_session_count)
        for name in ("sending_mta_ip", "receiving_ip"):
            value = getattr(self, name)
            if isinstance(value, str):
                canonical = canonical_ip(value)
                if canonical is not None and canonical != value:
                    object.__setattr__(self, name, canonical)


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """One ``policies`` entry: the policy applied, its summary and its failure details."""

    policy_type: PolicyType
    policy_string: tuple[str, ...]
    policy_domain: str
    mx_host: tuple[str, ...]
    total_successful_session_count: int
    total_failure_session_count: int
    failure_details: tuple[FailureDetail, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.policy_type, PolicyType):
            raise ReportError(f"unknown policy-type {self.policy_type!r}", code="report.shape")
        _check_strings("policy-string", self.policy_string)
        _check_strings("mx-host", self.mx_host)
        _check_count("total-successful-session-count", self.total_successful_session_count)
        _check_count("total-failure-session-count", self.total_failure_session_count)
        if not isinstance(self.failure_details, tuple):
            raise ReportError("failure-details must be a tuple", code="report.shape")


@dataclass(frozen=True, slots=True)
class Report:
    """One TLS-RPT report: who reports, for which time range, and the policies seen."""

    organization_name: str
    date_range_start: datetime
    date_range_end: datetime
    contact_info: str
    report_id: str
    policies: tuple[PolicyResult, ...]

    def __post_init__(self) -> None:
        for name in ("date_range_start", "date_range_end"):
            value = getattr(self, name)
            if not isinstance(value, datetime) or value.utcoffset() is None:
                raise ReportError(
                    f"{name} must be a datetime with a time zone", code="report.shape"
                )
            object.__setattr__(self, name, value.astimezone(UTC))
        if not isinstance(self.policies, tuple):
            raise ReportError("policies must be a tuple", code="report.shape")
