"""Monitoring (issue 13): the check history of ``mtasts monitor`` (see
mtasts.store.monitor_schema)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_checks",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("checked_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sts_id", sa.String(32), nullable=True),
        sa.Column("policy_text", sa.Text, nullable=True),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("findings", sa.Text, nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
    )
    op.create_index("ix_monitor_checks_domain_time", "monitor_checks", ["domain", "checked_at"])


def downgrade() -> None:
    op.drop_index("ix_monitor_checks_domain_time", table_name="monitor_checks")
    op.drop_table("monitor_checks")
