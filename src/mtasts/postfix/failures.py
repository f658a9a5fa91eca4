"""Policy failures the daemon meets, counted as TLS-RPT failure sessions (RFC 8461 §6,
RFC 8460 §4.3.2).

When the daemon cannot discover, fetch or validate a domain's policy and no cached policy
applies (lookup status ``failed``: never for a domain without MTA-STS, and never when a
cached policy, of any mode, still applies), Postfix delivers as if there were no policy
(RFC 8461 §3.3) and libtlsrpt never hears of the policy. So the daemon counts the
session itself: policy-type ``sts``, the domain as policy-domain, one failure detail with
the result type (``sts-policy-fetch-error``, ``sts-policy-invalid``,
``sts-webpki-invalid``) and the stable code of the cause as ``failure-reason-code``.

The counts go into the same store as ``mtasts tlsrpt collect``'s, through the same
pre-aggregating :class:`~mtasts.tlsrpt.collect.flusher.CounterFlusher` (its memory bound,
reconnect with back-off, one log line per outage phase), so ``mtasts tlsrpt reports``
shows them beside the sessions libtlsrpt reported. Counting is a dict increment on the
lookup path; only a background task writes to the store (every ``flush_interval``
seconds, and once at shutdown), so a slow or absent store never holds a lookup. With a
``spool`` file, counts the store could not take by shutdown are written there and replayed
at the next start (the collector's spool format; one file per process).

RFC 8460 counts sessions; the daemon sees lookups. Postfix's smtp(8) asks once per
delivery attempt on its own connection, and asks again when it retries, so each request
whose answer comes from a failed lookup counts one session, except that a request for
the same domain on the same connection within ``dedup_window`` seconds (one attempt
asking again: several MX hosts, a parent-domain walk) is the same session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime
from pathlib import Path

from mtasts.clock import Clock, monotonic, wall
from mtasts.results import PolicyType
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.collect.flusher import CounterFlusher
from mtasts.tlsrpt.store import TlsRptStore

log = logging.getLogger("mtasts.daemon")

MAX_PENDING = 16 << 20  # bytes of counters waiting for the store (~16,000 domain-days)


def _day(now: float) -> date:
    return datetime.fromtimestamp(now, UTC).date()


def failure_session(domain: str, result_type: str, reason_code: str = "") -> SessionOutcome:
    """The TLS-RPT session of one delivery made without the domain's unusable policy."""
    failure = FailureOutcome(result_type=result_type, failure_reason_code=reason_code)
    policy = PolicyOutcome(PolicyType.STS, domain, failed=True, failures=(failure,))
    return SessionOutcome(domain=domain, tlsrpt_record="", policies=(policy,))


class PolicyFailures:
    """Counts failure sessions in memory; a :class:`CounterFlusher` takes them to the store."""

    def __init__(
        self,
        store: TlsRptStore,
        *,
        spool: Path | None = None,
        flush_interval: float = 5.0,
        dedup_window: float = 2.0,
        max_pending: int = MAX_PENDING,
        clock: Clock = wall,
        monotonic: Clock = monotonic,
    ) -> None:
        self.flusher = CounterFlusher(
            store, spool=spool, max_pending=max_pending, monotonic=monotonic, wall=clock
        )
        self.flush_interval = flush_interval
        self.dedup_window = dedup_window
        self.clock = clock
        self.monotonic = monotonic
        self.counted = 0
        self._recent: dict[tuple[int, str], float] = {}
        self._sessions: dict[tuple[str, str, str], SessionOutcome] = {}
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def store(self) -> TlsRptStore:
        return self.flusher.store

    @property
    def dropped(self) -> int:
        """Sessions refused by the memory bound while the store was away."""
        return self.flusher.stats.dropped

    # --- counting (the lookup path: no I/O, no await) -----------------------------------

    def count(self, who: int, domain: str, result_type: str, reason_code: str = "") -> bool:
        """One failure session for ``domain``, unless connection ``who`` asked for it within
        ``dedup_window`` seconds. Returns whether it was counted."""
        now = self.monotonic()
        key = (who, domain)
        last = self._recent.get(key)
        self._recent[key] = now
        if last is not None and now - last < self.dedup_window:
            return False
        if len(self._recent) > 10_000:
            window = self.dedup_window
            self._recent = {k: t for k, t in self._recent.items() if now - t < window}
        skey = (domain, result_type, reason_code)
        session = self._sessions.get(skey)
        if session is None:
            if len(self._sessions) > 10_000:
                self._sessions.clear()
            session = self._sessions[skey] = failure_session(domain, result_type, reason_code)
        if not self.flusher.add(_day(self.clock()), session, len(domain) + len(reason_code)):
            return False
        self.counted += 1
        return True

    # --- the background writer ----------------------------------------------------------

    def start(self) -> None:
        """Create the tables and flush every ``flush_interval`` seconds, in the background
        (a store that is down at start is retried; the daemon does not wait for it)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        await self.flusher.start()
        await self.flusher.run(self.flush_interval, self._stop)

    async def flush(self) -> bool:
        """Write what was counted now (tests, shutdown); False if the store failed."""
        return await self.flusher.flush(force=True)

    async def close(self) -> None:
        """Stop the writer, flush once more, close the store; say what could not be written."""
        self._stop.set()
        if self._task is not None:
            # a flush under way gets a moment; cancelled, it keeps its counts in memory
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._task, 2.0)
            self._task = None
        result = await self.flusher.shutdown()
        if result.spool is not None:
            log.warning(
                "TLS-RPT store: %d policy-failure sessions written to the spool %s (%s); "
                "the next start replays them",
                result.sessions,
                result.spool,
                result.error,
            )
        elif not result.complete:
            log.warning(
                "TLS-RPT store: %d policy-failure sessions could not be written before exit (%s)",
                result.sessions,
                result.error,
            )
        with contextlib.suppress(Exception):
            await self.store.close()
