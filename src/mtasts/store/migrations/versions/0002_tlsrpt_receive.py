"""TLS-RPT receiving (issue 11): the raw archive, reports, their policies and failure
details, and every arrival (see mtasts.store.received_schema)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tlsrpt_rcv_raw",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tlsrpt_rcv_reports",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(64), nullable=False, unique=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_code", sa.String(64), nullable=True),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("organization", sa.Text, nullable=False),
        sa.Column("report_id", sa.Text, nullable=False),
        sa.Column("contact_info", sa.Text, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("range_start", sa.BigInteger, nullable=False),
        sa.Column("range_end", sa.BigInteger, nullable=False),
        sa.Column("domains", sa.Text, nullable=False),
        sa.Column("successful", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
        sa.Column("dkim_result", sa.String(16), nullable=False),
        sa.Column("dkim_domain", sa.String(253), nullable=True),
        sa.Column("dkim_selector", sa.String(253), nullable=True),
        sa.Column("dkim_reason", sa.Text, nullable=True),
        sa.Column("dkim_aligned", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Text, nullable=False),
        sa.Column("raw_sha256", sa.String(64), nullable=False),
        sa.Column("first_channel", sa.String(16), nullable=False),
        sa.Column("stored_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_tlsrpt_rcv_reports_day", "tlsrpt_rcv_reports", ["day"])
    op.create_index("ix_tlsrpt_rcv_reports_org_day", "tlsrpt_rcv_reports", ["organization", "day"])
    op.create_table(
        "tlsrpt_rcv_policies",
        sa.Column("report_pk", sa.BigInteger, primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("policy_domain", sa.String(253), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("organization", sa.Text, nullable=False),
        sa.Column("policy_type", sa.String(32), nullable=False),
        sa.Column("policy_string", sa.Text, nullable=False),
        sa.Column("mx_host", sa.Text, nullable=False),
        sa.Column("successful", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_tlsrpt_rcv_policies_domain_day", "tlsrpt_rcv_policies", ["policy_domain", "day"]
    )
    op.create_table(
        "tlsrpt_rcv_failures",
        sa.Column("report_pk", sa.BigInteger, primary_key=True),
        sa.Column("policy_idx", sa.Integer, primary_key=True),
        sa.Column("idx", sa.Integer, primary_key=True),
        sa.Column("policy_domain", sa.String(253), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("organization", sa.Text, nullable=False),
        sa.Column("result_type", sa.String(64), nullable=False),
        sa.Column("sending_mta_ip", sa.String(64), nullable=True),
        sa.Column("receiving_mx_hostname", sa.String(253), nullable=True),
        sa.Column("receiving_mx_helo", sa.Text, nullable=True),
        sa.Column("receiving_ip", sa.String(64), nullable=True),
        sa.Column("failed_session_count", sa.BigInteger, nullable=False),
        sa.Column("failure_reason_code", sa.Text, nullable=True),
        sa.Column("additional_information", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_tlsrpt_rcv_failures_domain_day", "tlsrpt_rcv_failures", ["policy_domain", "day"]
    )
    op.create_table(
        "tlsrpt_rcv_arrivals",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("content_type", sa.Text, nullable=True),
        sa.Column("secret_domain", sa.String(253), nullable=True),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("report_pk", sa.BigInteger, nullable=True),
        sa.Column("raw_sha256", sa.String(64), nullable=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("dkim_result", sa.String(16), nullable=False),
        sa.Column("dkim_domain", sa.String(253), nullable=True),
        sa.Column("dkim_selector", sa.String(253), nullable=True),
        sa.Column("dkim_reason", sa.Text, nullable=True),
        sa.Column("dkim_aligned", sa.Integer, nullable=False),
    )
    op.create_index("ix_tlsrpt_rcv_arrivals_received_at", "tlsrpt_rcv_arrivals", ["received_at"])
    op.create_index("ix_tlsrpt_rcv_arrivals_report", "tlsrpt_rcv_arrivals", ["report_pk"])
    op.create_index("ix_tlsrpt_rcv_arrivals_raw", "tlsrpt_rcv_arrivals", ["raw_sha256"])


def downgrade() -> None:
    for name in (
        "tlsrpt_rcv_arrivals",
        "tlsrpt_rcv_failures",
        "tlsrpt_rcv_policies",
        "tlsrpt_rcv_reports",
        "tlsrpt_rcv_raw",
    ):
        op.drop_table(name)
