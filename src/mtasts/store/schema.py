"""Tables for TLS-RPT sending: daily counters and the delivery journal (one schema for
SQLite and PostgreSQL; created with CREATE TABLE IF NOT EXISTS, see engine.py).

Days are ISO ``YYYY-MM-DD`` strings and times Unix seconds, so both databases store
and sort them the same way with no driver type conversion."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# One row per (UTC day, applied policy): the summary counts of RFC 8460 §4.2.
policy_counters = Table(
    "tlsrpt_policy_counters",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, UTC
    Column("policy_id", String(64), primary_key=True),  # sha256 of the identity below
    Column("domain", String(253), nullable=False),  # whose _smtp._tls gets the report
    Column("tlsrpt_record", Text, nullable=False),  # the record the MTA saw, "" if none
    Column("policy_type", String(32), nullable=False),
    Column("policy_domain", String(253), nullable=False),
    Column("policy_string", Text, nullable=False),  # JSON array of the raw policy lines
    Column("mx_host", Text, nullable=False),  # JSON array of mx patterns
    Column("successful", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Index("ix_tlsrpt_policy_counters_day_domain", "day", "domain"),
)

# One row per (UTC day, policy, failure detail): failed-session-count of RFC 8460 §4.3.
failure_counters = Table(
    "tlsrpt_failure_counters",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("policy_id", String(64), primary_key=True),
    Column("failure_id", String(64), primary_key=True),
    Column("result_type", String(64), nullable=False),
    Column("sending_mta_ip", String(64), nullable=False),
    Column("receiving_mx_hostname", String(253), nullable=False),
    Column("receiving_mx_helo", Text, nullable=False),
    Column("receiving_ip", String(64), nullable=False),
    Column("additional_information", Text, nullable=False),
    Column("failure_reason_code", Text, nullable=False),
    Column("count", BigInteger, nullable=False),
)

# The delivery journal: each report is built once (so retries resend the same bytes and
# report-id), then each destination is tried until it accepts or 24 h have passed.
outbox = Table(
    "tlsrpt_outbox",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("domain", String(253), primary_key=True),
    Column("report_id", Text, nullable=False),
    Column("filename", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),  # the gzip report file
    Column("tlsrpt_record", Text, nullable=False),  # the record the destinations came from
    Column("created_at", BigInteger, nullable=False),  # Unix seconds
)

deliveries = Table(
    "tlsrpt_deliveries",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("domain", String(253), primary_key=True),
    Column("destination", Text, primary_key=True),  # the rua URI
    Column("status", String(16), nullable=False),  # pending | sent | expired
    Column("attempts", Integer, nullable=False),
    Column("not_before", BigInteger, nullable=False),  # next attempt, Unix seconds
    Column("first_attempt_at", BigInteger, nullable=True),
    Column("delivered_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=False),
    Index("ix_tlsrpt_deliveries_due", "status", "not_before"),
)
