"""The check history of ``mtasts monitor``: one row per check of one domain (migration
0004 creates it). Read it with :mod:`mtasts.monitor.history`.

Times are Unix seconds, as in :mod:`mtasts.store.schema`. ``snapshot`` is the JSON of
:class:`mtasts.monitor.snapshot.Snapshot`, ``findings`` the check's findings as
``mtasts check --json`` prints them, ``conditions`` the active conditions after the
check; ``sts_id`` and ``policy_text`` are columns of their own because the monitor
asks "which policy was first served with this id".
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from mtasts.store.schema import metadata

_PK = BigInteger().with_variant(Integer(), "sqlite")

monitor_checks = Table(
    "monitor_checks",
    metadata,
    Column("pk", _PK, primary_key=True, autoincrement=True),
    Column("domain", String(253), nullable=False),
    Column("checked_at", BigInteger, nullable=False),  # Unix seconds
    Column("status", String(16), nullable=False),  # OK | WARNING | CRITICAL | UNKNOWN
    Column("sts_id", String(32), nullable=True),
    Column("policy_text", Text, nullable=True),
    Column("snapshot", Text, nullable=False),  # JSON
    Column("findings", Text, nullable=False),  # JSON list
    Column("conditions", Text, nullable=False),  # JSON list
    Index("ix_monitor_checks_domain_time", "domain", "checked_at"),
)
