"""Alerts (issue 12): conditions and the notification outbox (see
mtasts.store.alerts_schema)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels = None
depends_on = None

_PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_conditions",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column("open_key", sa.String(520), nullable=True, unique=True),
        sa.Column("key", sa.String(520), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("domain", sa.String(253), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("first_seen", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("resolved_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_alert_conditions_key", "alert_conditions", ["key"])
    op.create_index("ix_alert_conditions_domain", "alert_conditions", ["domain"])
    op.create_table(
        "alert_notifications",
        sa.Column("pk", _PK, primary_key=True, autoincrement=True),
        sa.Column("condition_pk", sa.BigInteger, nullable=True),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_alert_notifications_due", "alert_notifications", ["status", "next_attempt_at"]
    )
    op.create_index("ix_alert_notifications_condition", "alert_notifications", ["condition_pk"])


def downgrade() -> None:
    op.drop_table("alert_notifications")
    op.drop_table("alert_conditions")
