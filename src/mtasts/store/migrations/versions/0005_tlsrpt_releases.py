"""TLS-RPT receiving: quarantined reports an administrator released by hand
(``mtasts tlsrpt release``), kept so ``tlsrpt reprocess`` releases them again (see
mtasts.store.received_schema)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tlsrpt_rcv_releases",
        sa.Column("dedup_key", sa.String(64), primary_key=True),
        sa.Column("released_at", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.String(64), nullable=True),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("tlsrpt_rcv_releases")
