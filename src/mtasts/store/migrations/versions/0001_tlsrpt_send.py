"""The first release's schema: TLS-RPT sending counters and the delivery journal.

Stores written before migrations existed have exactly these tables and are stamped with
this revision (mtasts.store.migrate), not re-created.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tlsrpt_policy_counters",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("policy_id", sa.String(64), primary_key=True),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("tlsrpt_record", sa.Text, nullable=False),
        sa.Column("policy_type", sa.String(32), nullable=False),
        sa.Column("policy_domain", sa.String(253), nullable=False),
        sa.Column("policy_string", sa.Text, nullable=False),
        sa.Column("mx_host", sa.Text, nullable=False),
        sa.Column("successful", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_tlsrpt_policy_counters_day_domain", "tlsrpt_policy_counters", ["day", "domain"]
    )
    op.create_table(
        "tlsrpt_failure_counters",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("policy_id", sa.String(64), primary_key=True),
        sa.Column("failure_id", sa.String(64), primary_key=True),
        sa.Column("result_type", sa.String(64), nullable=False),
        sa.Column("sending_mta_ip", sa.String(64), nullable=False),
        sa.Column("receiving_mx_hostname", sa.String(253), nullable=False),
        sa.Column("receiving_mx_helo", sa.Text, nullable=False),
        sa.Column("receiving_ip", sa.String(64), nullable=False),
        sa.Column("additional_information", sa.Text, nullable=False),
        sa.Column("failure_reason_code", sa.Text, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tlsrpt_outbox",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("report_id", sa.Text, nullable=False),
        sa.Column("filename", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("tlsrpt_record", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "tlsrpt_deliveries",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("destination", sa.Text, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("not_before", sa.BigInteger, nullable=False),
        sa.Column("first_attempt_at", sa.BigInteger, nullable=True),
        sa.Column("delivered_at", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False),
    )
    op.create_index("ix_tlsrpt_deliveries_due", "tlsrpt_deliveries", ["status", "not_before"])


def downgrade() -> None:
    for name in (
        "tlsrpt_deliveries",
        "tlsrpt_outbox",
        "tlsrpt_failure_counters",
        "tlsrpt_policy_counters",
    ):
        op.drop_table(name)
