"""Tables for TLS-RPT receiving (RFC 8460 §5): reports, their policies and failure
details, every arrival, and the raw bytes of every input (so ``tlsrpt reprocess`` can
read everything again after a reader fix). Migration 0002 creates them.

Designed for per-domain, per-day questions over years: policy and failure rows carry
their policy domain, UTC day and reporting organisation, indexed (domain, day), so a
domain's month is an index range, never a scan. Days are ISO ``YYYY-MM-DD`` strings and
times Unix seconds, as in :mod:`mtasts.store.schema`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from mtasts.store.schema import metadata

# SQLite only auto-increments an INTEGER PRIMARY KEY
_PK = BigInteger().with_variant(Integer(), "sqlite")

# One row per distinct input, byte for byte (the archive).
raw_inputs = Table(
    "tlsrpt_rcv_raw",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("first_seen", BigInteger, nullable=False),  # Unix seconds
)

# One row per report, whatever number of copies arrived.
reports = Table(
    "tlsrpt_rcv_reports",
    metadata,
    Column("pk", _PK, primary_key=True, autoincrement=True),
    Column("dedup_key", String(64), nullable=False, unique=True),  # org + id + range + domains
    Column("content_hash", String(64), nullable=False, unique=True),  # the report as read
    Column("status", String(16), nullable=False),  # stored | quarantined
    Column("status_code", String(64), nullable=True),  # why quarantined
    Column("status_reason", Text, nullable=True),
    Column("organization", Text, nullable=False),
    Column("report_id", Text, nullable=False),
    Column("contact_info", Text, nullable=False),
    Column("day", String(10), nullable=False),  # UTC day of the range start
    Column("range_start", BigInteger, nullable=False),  # Unix seconds
    Column("range_end", BigInteger, nullable=False),
    Column("domains", Text, nullable=False),  # JSON array of the policy domains
    Column("successful", BigInteger, nullable=False),  # over all policies
    Column("failed", BigInteger, nullable=False),
    Column("dkim_result", String(16), nullable=False),  # the best verdict over its copies
    Column("dkim_domain", String(253), nullable=True),
    Column("dkim_selector", String(253), nullable=True),
    Column("dkim_reason", Text, nullable=True),
    Column("dkim_aligned", Integer, nullable=False),
    Column("warnings", Text, nullable=False),  # JSON: the tolerant reader's repairs
    Column("raw_sha256", String(64), nullable=False),  # the copy it was read from
    Column("first_channel", String(16), nullable=False),
    Column("stored_at", BigInteger, nullable=False),
    Index("ix_tlsrpt_rcv_reports_day", "day"),
    Index("ix_tlsrpt_rcv_reports_org_day", "organization", "day"),
)

# One row per policies[] entry of a report: RFC 8460 §4.2 summary counts.
report_policies = Table(
    "tlsrpt_rcv_policies",
    metadata,
    Column("report_pk", BigInteger, primary_key=True),
    Column("idx", Integer, primary_key=True),  # position in policies[]
    Column("policy_domain", String(253), nullable=False),
    Column("day", String(10), nullable=False),
    Column("organization", Text, nullable=False),
    Column("policy_type", String(32), nullable=False),
    Column("policy_string", Text, nullable=False),  # JSON array
    Column("mx_host", Text, nullable=False),  # JSON array
    Column("successful", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Index("ix_tlsrpt_rcv_policies_domain_day", "policy_domain", "day"),
)

# One row per failure-details entry (RFC 8460 §4.3); absent fields are NULL.
report_failures = Table(
    "tlsrpt_rcv_failures",
    metadata,
    Column("report_pk", BigInteger, primary_key=True),
    Column("policy_idx", Integer, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("policy_domain", String(253), nullable=False),
    Column("day", String(10), nullable=False),
    Column("organization", Text, nullable=False),
    Column("result_type", String(64), nullable=False),
    Column("sending_mta_ip", String(64), nullable=True),
    Column("receiving_mx_hostname", String(253), nullable=True),
    Column("receiving_mx_helo", Text, nullable=True),
    Column("receiving_ip", String(64), nullable=True),
    Column("failed_session_count", BigInteger, nullable=False),
    Column("failure_reason_code", Text, nullable=True),
    Column("additional_information", Text, nullable=True),
    Index("ix_tlsrpt_rcv_failures_domain_day", "policy_domain", "day"),
)

# Every copy that arrived, whatever became of it.
arrivals = Table(
    "tlsrpt_rcv_arrivals",
    metadata,
    Column("pk", _PK, primary_key=True, autoincrement=True),
    Column("received_at", BigInteger, nullable=False),  # Unix seconds, the caller's clock
    Column("channel", String(16), nullable=False),
    Column("source", Text, nullable=False),
    Column("content_type", Text, nullable=True),
    Column("secret_domain", String(253), nullable=True),
    Column("disposition", String(16), nullable=False),
    Column("reason_code", String(64), nullable=True),
    Column("reason", Text, nullable=True),
    Column("report_pk", BigInteger, nullable=True),
    Column("raw_sha256", String(64), nullable=True),  # NULL when the bytes were not kept
    Column("size", BigInteger, nullable=False),
    Column("dkim_result", String(16), nullable=False),
    Column("dkim_domain", String(253), nullable=True),
    Column("dkim_selector", String(253), nullable=True),
    Column("dkim_reason", Text, nullable=True),
    Column("dkim_aligned", Integer, nullable=False),
    Index("ix_tlsrpt_rcv_arrivals_received_at", "received_at"),
    Index("ix_tlsrpt_rcv_arrivals_report", "report_pk"),
    Index("ix_tlsrpt_rcv_arrivals_raw", "raw_sha256"),
)

# Quarantined reports released by hand (`mtasts tlsrpt release`), by dedup key so that
# `tlsrpt reprocess`, which rebuilds every report, releases them again; why each was
# quarantined is kept (migration 0005).
releases = Table(
    "tlsrpt_rcv_releases",
    metadata,
    Column("dedup_key", String(64), primary_key=True),
    Column("released_at", BigInteger, nullable=False),  # Unix seconds
    Column("status_code", String(64), nullable=True),  # the quarantine it ended
    Column("status_reason", Text, nullable=True),
    Column("note", Text, nullable=True),  # the administrator's words, if any
)

RECEIVE_TABLES = (raw_inputs, reports, report_policies, report_failures, arrivals, releases)
