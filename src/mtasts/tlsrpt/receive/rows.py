"""The rows one batch of received arrivals writes: a parsed arrival (:class:`Pending`)
and the tuples of each table's INSERT, in its column order (no dict a row).

Pure. Values are made safe for either database here: text cut to its column's length,
U+0000 (which PostgreSQL text cannot hold) written as U+FFFD. The writes are in
:mod:`mtasts.tlsrpt.receive.received`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from mtasts.errors import Notice
from mtasts.tlsrpt.model import Report
from mtasts.tlsrpt.receive.decide import (
    NO_DKIM,
    Disposition,
    DkimVerdict,
    Verdict,
    policy_domains,
)


@dataclass(frozen=True, slots=True)
class Pending:
    """One parsed arrival, ready to be written."""

    received_at: int
    channel: str
    source: str
    content_type: str | None
    secret_domain: str | None
    size: int
    raw_sha256: str
    raw: bytes | None  # None: the bytes are not archived
    report: Report | None
    verdict: Verdict
    dkim: DkimVerdict
    warnings: tuple[Notice, ...]
    dedup_key: str | None = None
    content_hash: str | None = None
    known_report_pk: int | None = None  # identical bytes already gave this report
    domains: tuple[str, ...] | None = None  # policy_domains(report), computed once


def cut(value: str | None, n: int) -> str | None:
    """Hostile input can be longer than a VARCHAR column (PostgreSQL refuses it and the
    whole batch would fail): values are cut to the column's length."""
    if value is None or (len(value) <= n and "\x00" not in value):
        return value  # the common case, without copying
    return value[:n].replace("\x00", "\ufffd")


Row = tuple[Any, ...]


def nul_free(rows: list[Row]) -> list[Row]:
    """PostgreSQL text cannot hold U+0000 (a report may: JSON allows it): written as
    U+FFFD, so one such report does not fail the batch."""
    # orjson writes U+0000 as the escape \u0000: one pass in C finds the rows clean
    # (the escape written literally, or text orjson refuses such as a file name with a
    # lone surrogate, only sends the rows through the loop below).
    try:
        if b"\\u0000" not in orjson.dumps(rows, default=_no_value):
            return rows
    except orjson.JSONEncodeError:
        pass
    return [
        tuple(v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v for v in row)
        for row in rows
    ]


def _no_value(value: object) -> None:
    return None  # bytes and the like: no text to clean


# The columns each insert writes, in the order of the row tuples built below.
DKIM_COLUMNS = ("dkim_result", "dkim_domain", "dkim_selector", "dkim_reason", "dkim_aligned")
RAW_COLUMNS = ("sha256", "size", "body", "first_seen")
REPORT_COLUMNS = (
    "dedup_key",
    "content_hash",
    "status",
    "status_code",
    "status_reason",
    "organization",
    "report_id",
    "contact_info",
    "day",
    "range_start",
    "range_end",
    "domains",
    "successful",
    "failed",
    *DKIM_COLUMNS,
    "warnings",
    "raw_sha256",
    "first_channel",
    "stored_at",
)
POLICY_COLUMNS = (
    "report_pk",
    "idx",
    "policy_domain",
    "day",
    "organization",
    "policy_type",
    "policy_string",
    "mx_host",
    "successful",
    "failed",
)
FAILURE_COLUMNS = (
    "report_pk",
    "policy_idx",
    "idx",
    "policy_domain",
    "day",
    "organization",
    "result_type",
    "sending_mta_ip",
    "receiving_mx_hostname",
    "receiving_mx_helo",
    "receiving_ip",
    "failed_session_count",
    "failure_reason_code",
    "additional_information",
)
ARRIVAL_COLUMNS = (
    "received_at",
    "channel",
    "source",
    "content_type",
    "secret_domain",
    "disposition",
    "reason_code",
    "reason",
    "report_pk",
    "raw_sha256",
    "size",
    *DKIM_COLUMNS,
)


def _dkim_values(d: DkimVerdict) -> Row:
    return (
        d.result._value_,
        cut(d.domain, 253),
        cut(d.selector, 253),
        cut(d.reason, 2000),
        int(d.aligned),
    )


_NO_DKIM_VALUES = _dkim_values(NO_DKIM)


def dkim_cols(d: DkimVerdict) -> Row:
    """The DKIM columns of a row, in :data:`DKIM_COLUMNS` order."""
    return _NO_DKIM_VALUES if d is NO_DKIM else _dkim_values(d)


# Enum members' ``_value_`` rather than ``.value``: the property costs ~1 µs a read in
# Python 3.11, several per report row.
_STORED, _QUARANTINED = Disposition.STORED._value_, Disposition.QUARANTINED._value_


def report_row(p: Pending, day: str, now: int) -> Row:
    r = p.report
    assert r is not None
    assert p.dedup_key is not None
    assert p.content_hash is not None
    quarantined = p.verdict.disposition is Disposition.QUARANTINED
    successful = failed = 0
    for x in r.policies:
        successful += x.total_successful_session_count
        failed += x.total_failure_session_count
    return (
        p.dedup_key,
        p.content_hash,
        _QUARANTINED if quarantined else _STORED,
        p.verdict.reason_code if quarantined else None,
        p.verdict.reason if quarantined else None,
        r.organization_name,
        r.report_id,
        r.contact_info,
        day,
        int(r.date_range_start.timestamp()),
        int(r.date_range_end.timestamp()),
        orjson.dumps(policy_domains(r) if p.domains is None else p.domains).decode(),
        successful,
        failed,
        *dkim_cols(p.dkim),
        orjson.dumps([w.to_json() for w in p.warnings]).decode() if p.warnings else "[]",
        p.raw_sha256,
        p.channel,
        now,
    )


def detail_rows(pk: int, r: Report, day: str, policies: list[Row], failures: list[Row]) -> None:
    """Append the report's policy and failure-details rows."""
    org = r.organization_name
    for i, pol in enumerate(r.policies):
        domain = cut(pol.policy_domain.lower().rstrip("."), 253)
        policies.append(
            (
                pk,
                i,
                domain,
                day,
                org,
                pol.policy_type._value_,  # one of three, short
                orjson.dumps(pol.policy_string).decode(),
                orjson.dumps(pol.mx_host).decode(),
                pol.total_successful_session_count,
                pol.total_failure_session_count,
            )
        )
        for j, f in enumerate(pol.failure_details):
            failures.append(
                (
                    pk,
                    i,
                    j,
                    domain,
                    day,
                    org,
                    cut(f.result_type, 64),
                    cut(f.sending_mta_ip, 64),
                    cut(f.receiving_mx_hostname, 253),
                    f.receiving_mx_helo,
                    cut(f.receiving_ip, 64),
                    f.failed_session_count,
                    f.failure_reason_code,
                    f.additional_information,
                )
            )


def arrival_row(
    p: Pending,
    disposition: Disposition,
    reason_code: str | None,
    reason: str | None,
    report_pk: int | None,
    *,
    archived: bool,
) -> Row:
    """The arrivals row of ``p``: what became of it (``archived``: its bytes are kept)."""
    return (
        p.received_at,
        p.channel,
        p.source,
        p.content_type,
        p.secret_domain,
        disposition._value_,
        reason_code,
        reason,
        report_pk,
        p.raw_sha256 if archived else None,
        p.size,
        *dkim_cols(p.dkim),
    )
