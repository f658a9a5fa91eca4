"""TLS-RPT reports (RFC 8460 §4, §5): the model, the strict writer and the tolerant reader.

Pure: values in, bytes out (and back). This module is the one codec between the
snake_case model (:mod:`mtasts.tlsrpt.model`) and the hyphenated JSON on the wire.

- The writer is strict: exactly the RFC 8460 §4.4 keys, RFC 3339 UTC date-times ending
  in ``Z``, no ``null`` for an absent optional field, RFC 5952 IPv6 text (IPv4-mapped
  as ``::ffff:192.0.2.10``) and nothing but IP addresses in the IP fields, I-JSON.
- The reader (:func:`read_report`, :func:`report_from_json`, in
  :mod:`mtasts.tlsrpt.reader`) accepts plain JSON, gzip and whole report e-mails, repairs
  every known real-world deviation and records each repair as a warning.
"""

from __future__ import annotations

import gzip as _gzip
import re
from datetime import UTC, datetime

import idna
import orjson

from mtasts.errors import ReportError
from mtasts.results import PolicyType
from mtasts.tlsrpt.model import FailureDetail, PolicyResult, Report, canonical_ip
from mtasts.tlsrpt.reader import MAX_REPORT_BYTES, read_report, report_from_json

__all__ = [
    "MAX_REPORT_BYTES",
    "FailureDetail",
    "PolicyResult",
    "Report",
    "format_datetime",
    "read_report",
    "report_filename",
    "report_from_json",
    "report_to_json",
    "write_report",
    "write_report_gzip",
]

_UNIQUE_ID = re.compile(r"[A-Za-z0-9]+")


def format_datetime(value: datetime) -> str:
    """RFC 3339 §5.6 ``date-time`` in UTC with ``Z`` (fraction only when non-zero)."""
    utc = value.astimezone(UTC)
    # Not strftime("%Y"): it writes year 999 as "999", and date-fullyear is 4DIGIT.
    text = f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}"
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def _detail_to_json(detail: FailureDetail) -> dict[str, object]:
    # RFC 8460 §4.4: sending-mta-ip and receiving-ip are ip-address (RFC 5952 form for
    # IPv6, ::ffff:a.b.c.d for IPv4-mapped, §5). Text that is not an IP address (a tolerant
    # read keeps it) is left out: the fields are optional, a wrong value is not.
    out: dict[str, object] = {"result-type": detail.result_type}
    sending_ip = canonical_ip(detail.sending_mta_ip) if detail.sending_mta_ip else None
    if sending_ip is not None:
        out["sending-mta-ip"] = sending_ip
    if detail.receiving_mx_hostname is not None:
        out["receiving-mx-hostname"] = detail.receiving_mx_hostname
    if detail.receiving_mx_helo is not None:
        out["receiving-mx-helo"] = detail.receiving_mx_helo
    receiving_ip = canonical_ip(detail.receiving_ip) if detail.receiving_ip else None
    if receiving_ip is not None:
        out["receiving-ip"] = receiving_ip
    out["failed-session-count"] = detail.failed_session_count
    if detail.additional_information is not None:
        out["additional-information"] = detail.additional_information
    if detail.failure_reason_code is not None:
        out["failure-reason-code"] = detail.failure_reason_code
    return out


def _policy_to_json(result: PolicyResult) -> dict[str, object]:
    policy: dict[str, object] = {
        "policy-type": str(result.policy_type),
        "policy-string": list(result.policy_string),
        # The architecture pins policy-domain as always present (sys4 omits it, §7.6 E-62).
        "policy-domain": result.policy_domain,
    }
    # RFC 8460 §4.4: mx-host is the STS policy's MX patterns, an array (erratum 6241);
    # for tlsa and no-policy-found the RFC is silent and we omit it when empty (E-61).
    if result.mx_host or result.policy_type is PolicyType.STS:
        policy["mx-host"] = list(result.mx_host)
    return {
        "policy": policy,
        "summary": {
            "total-successful-session-count": result.total_successful_session_count,
            "total-failure-session-count": result.total_failure_session_count,
        },
        "failure-details": [_detail_to_json(d) for d in result.failure_details],
    }


def report_to_json(report: Report) -> dict[str, object]:
    """The report as RFC 8460 §4.4 JSON (hyphenated keys), ready for a JSON encoder."""
    return {
        "organization-name": report.organization_name,
        "date-range": {
            "start-datetime": format_datetime(report.date_range_start),
            "end-datetime": format_datetime(report.date_range_end),
        },
        "contact-info": report.contact_info,
        "report-id": report.report_id,
        "policies": [_policy_to_json(p) for p in report.policies],  # MUST be an array (§4)
    }


def write_report(report: Report) -> bytes:
    """The report as UTF-8 JSON bytes (``application/tlsrpt+json``)."""
    try:
        return orjson.dumps(report_to_json(report))
    except orjson.JSONEncodeError as exc:  # a lone surrogate in a string: not I-JSON
        raise ReportError(
            f"the report cannot be written as I-JSON: {exc}", code="report.write.invalid"
        ) from exc


def write_report_gzip(report: Report) -> bytes:
    """The report gzipped (``application/tlsrpt+gzip``, RFC 8460 §5.2 SHOULD).

    ``mtime=0`` and no file name in the gzip header: the output depends only on the report.
    """
    return _gzip.compress(write_report(report), mtime=0)


# A plain LDH name (letters, digits, inner hyphens; no "--" anywhere, so no xn-- label):
# idna.decode accepts every such name of at most 253 characters unchanged, so it is not
# called for them (it cost ~30 µs per domain, 65 % of building 100,000 reports).
_LDH_NAME = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)


def _a_label_domain(name: str, what: str) -> str:
    """A domain in A-labels, lower case, no trailing dot (RFC 8460 §5.1 MUST)."""
    text = name.rstrip(".").lower()
    if len(text) <= 253 and "--" not in text and _LDH_NAME.fullmatch(text):
        return text
    return _idna_a_label_domain(name, what)


def _idna_a_label_domain(name: str, what: str) -> str:
    """:func:`_a_label_domain` through the idna package (every name but plain LDH)."""
    text = name.rstrip(".").lower()
    try:
        if text.isascii():
            idna.decode(text)  # checks that any xn-- label is a valid A-label
            ascii_name = text
        else:
            ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ReportError(
            f"{what} {name!r} is not a valid domain name: {exc}", code="report.filename.domain"
        ) from exc
    if not ascii_name or "!" in ascii_name:
        raise ReportError(f"{what} {name!r} is not a domain name", code="report.filename.domain")
    return ascii_name


def report_filename(
    report: Report, *, submitter: str, policy_domain: str, unique_id: str, gzip: bool = True
) -> str:
    """The RECOMMENDED file name of RFC 8460 §5.1.

    ``filename = sender "!" policy-domain "!" begin-timestamp "!" end-timestamp
    [ "!" unique-id ] "." extension`` with Unix-second timestamps of the report's range,
    ``unique-id = 1*(ALPHA / DIGIT)`` (``""`` omits it) and extension ``json.gz`` or
    ``json`` (MUST). Both domains are written in A-labels (MUST).
    """
    if unique_id and not _UNIQUE_ID.fullmatch(unique_id):
        raise ReportError(
            f"unique-id {unique_id!r} must be letters and digits only",
            code="report.filename.unique-id",
        )
    parts = [
        _a_label_domain(submitter, "submitter"),
        _a_label_domain(policy_domain, "policy domain"),
        str(int(report.date_range_start.timestamp())),
        str(int(report.date_range_end.timestamp())),
    ]
    if unique_id:
        parts.append(unique_id)
    return "!".join(parts) + (".json.gz" if gzip else ".json")
