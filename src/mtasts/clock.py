"""The one clock: where mtasts reads the time.

A component that needs the time takes a clock argument whose default is one of these,
so a test hands it its own (a fixed instant, a day later) and nothing else reads the
wall clock (guides: "Time comes in as an argument or a Clock").

* :data:`Clock`: seconds as a float: :func:`wall` (since the epoch: instants that are
  stored, reported or compared with a day) or :func:`monotonic` (intervals: timeouts,
  back-off, rates, TTLs of in-memory caches);
* :data:`UtcClock`: an aware UTC ``datetime``: :func:`utc_now`; :func:`utc_today` is
  its day (TLS-RPT's unit, RFC 8460 §4.1).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime

Clock = Callable[[], float]
UtcClock = Callable[[], datetime]

wall: Clock = time.time
monotonic: Clock = time.monotonic


def utc_now() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def utc_today() -> date:
    """Today's UTC day."""
    return datetime.now(UTC).date()
