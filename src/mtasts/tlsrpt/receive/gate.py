"""The one door every network channel (https, SMTP, LMTP, IMAP) passes to reach the store.

It bounds the ingests in progress (past ``max_inflight`` the caller answers "busy, try
again": 503 or 451, never a queue that grows), times the store, counts every outcome in
the metrics, and turns a store that cannot answer into a transient failure instead of a
crashed listener. The Receiver returns only once the report is durably stored, so a
channel that answers "accepted" after :meth:`Gate.ingest` never loses a report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from mtasts.clock import Clock, monotonic
from mtasts.tlsrpt.receive.intake import Arrival, IngestOutcome, StoreUnavailable
from mtasts.tlsrpt.receive.metrics import IntakeMetrics

log = logging.getLogger(__name__)

Kind = Literal["mail", "report"]


class Ingests(Protocol):
    """What the network needs of :class:`~mtasts.tlsrpt.receive.intake.Receiver`."""

    async def ingest_mail(self, raw: bytes, arrival: Arrival) -> IngestOutcome: ...

    async def ingest_report(self, raw: bytes, arrival: Arrival) -> IngestOutcome: ...


@dataclass(frozen=True, slots=True)
class StoreFailed:
    """The store could not take the report now: the sender must try again later."""

    reason: str


class Gate:
    def __init__(
        self,
        receiver: Ingests,
        *,
        max_inflight: int,
        metrics: IntakeMetrics | None = None,
        clock: Clock = monotonic,
    ) -> None:
        self.receiver = receiver
        self.max_inflight = max_inflight
        self.metrics = metrics or IntakeMetrics()
        self.clock = clock
        self.inflight = 0

    def enter(self) -> bool:
        """Takes an ingest slot; False when ``max_inflight`` are already in progress."""
        if self.inflight >= self.max_inflight:
            return False
        self.inflight += 1
        self.metrics.inflight.set(self.inflight)
        return True

    def leave(self) -> None:
        self.inflight -= 1
        self.metrics.inflight.set(self.inflight)

    async def ingest(self, kind: Kind, raw: bytes, arrival: Arrival) -> IngestOutcome | StoreFailed:
        """Hands ``raw`` to the Receiver (the caller holds a slot from :meth:`enter`)."""
        call = self.receiver.ingest_mail if kind == "mail" else self.receiver.ingest_report
        start = self.clock()
        channel = str(arrival.channel)
        try:
            outcome = await call(raw, arrival)
        except StoreUnavailable as exc:
            log.warning("%s from %s: %s (the sender will retry)", channel, arrival.source, exc)
            self.metrics.refuse(channel, "store-failed")
            return StoreFailed(str(exc))
        except Exception as exc:
            # The boundary between a listener and the store: whatever the store raised
            # (database down, disk full, a bug on one input), this sender gets a
            # transient failure and retries; the listener, and every other session,
            # goes on. The cause is logged with its traceback, not swallowed.
            log.exception("ingest of %s from %s failed", channel, arrival.source)
            self.metrics.refuse(channel, "store-failed")
            return StoreFailed(f"{type(exc).__name__}: {exc}")
        finally:
            self.metrics.store_seconds.labels(channel).observe(self.clock() - start)
        self.metrics.outcome(channel, outcome.disposition.name, outcome.reason_code)
        if kind == "mail":  # https has no DKIM: its "none" would say nothing
            self.metrics.dkim.labels(str(outcome.dkim.result)).inc()
        return outcome
