"""Tables of the alerts (issue 12): conditions, open and resolved, and the notification
outbox. Migration 0003 creates them; :mod:`mtasts.alerts.store` reads and writes them.

A condition is open while ``resolved_at`` is NULL; ``open_key`` holds its key then and
NULL once resolved, so the UNIQUE constraint allows one open condition per key (both
SQLite and PostgreSQL let NULLs repeat) while resolved ones keep their history.
Each transition writes one notification row per configured channel in the same
transaction: a notification that could not be sent yet stays ``pending`` and is retried,
so no transition is lost to a relay or webhook that is down. Times are Unix seconds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from mtasts.store.schema import metadata

_PK = BigInteger().with_variant(Integer(), "sqlite")

conditions = Table(
    "alert_conditions",
    metadata,
    Column("pk", _PK, primary_key=True, autoincrement=True),
    Column("open_key", String(520), nullable=True, unique=True),  # key while open
    Column("key", String(520), nullable=False),  # kind:domain[:subject]
    Column("source", String(64), nullable=False),  # rules | monitor | ...
    Column("kind", String(64), nullable=False),
    Column("domain", String(253), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("details", Text, nullable=False),  # JSON object
    Column("first_seen", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Index("ix_alert_conditions_key", "key"),
    Index("ix_alert_conditions_domain", "domain"),
)

notifications = Table(
    "alert_notifications",
    metadata,
    Column("pk", _PK, primary_key=True, autoincrement=True),
    Column("condition_pk", BigInteger, nullable=True),  # NULL for `alerts test`
    Column("event", String(16), nullable=False),  # raised | resolved | test
    Column("channel", String(64), nullable=False),  # a configured channel's name
    Column("payload", Text, nullable=False),  # JSON: the message as of the transition
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_alert_notifications_due", "status", "next_attempt_at"),
    Index("ix_alert_notifications_condition", "condition_pk"),
)

ALERT_TABLES = (conditions, notifications)
