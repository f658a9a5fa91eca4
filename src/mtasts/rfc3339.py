"""Instants in ``--json`` output: RFC 3339 UTC text (docs/json.md).

Pure. Every reporting command writes a point in time as ``2026-12-02T21:45:07Z`` (RFC
3339 §5.6 ``date-time`` with the ``Z`` offset, whole seconds), a day as ``2026-12-02``;
never a Unix timestamp, so a reader needs no knowledge of our storage to use it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_text(value: float | datetime | None) -> str | None:
    """``value`` (Unix seconds, or an aware datetime) as RFC 3339 UTC text; None stays None.

    A naive datetime is read as UTC (the store keeps UTC only)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        when = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    else:
        when = datetime.fromtimestamp(value, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
