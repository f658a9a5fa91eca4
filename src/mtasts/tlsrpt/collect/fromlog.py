"""``mtasts tlsrpt collect --postfix-log FILE|-``: TLS-RPT for Postfix < 3.10 from its log.

Postfix before 3.10 has no libtlsrpt; its smtp(8) log lines say enough
(:mod:`mtasts.tlsrpt.collect.postfix_log`, pure). The policy each recipient domain had
comes from the daemon's MTA-STS cache, read directly when it is shared (sqlite, redis,
postgresql) or through the running daemon's control address (``--daemon URL``) when it
lives in the daemon's memory. It is the policy cached now, not necessarily the one in
force at the line's time: run the reader continuously (``tail -F ... | ... -``) or soon
after the log is written. A domain without a usable cached policy is counted under
``no-policy-found``.

The counters go to the same store as ``tlsrpt collect``'s, every ``flush_interval``
seconds and at the end; ``tlsrpt send`` builds the reports from them as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from mtasts.clock import utc_today, wall
from mtasts.results import PolicyType
from mtasts.runtime import stop_event
from mtasts.sts.refresh import CacheEntry, policy_valid
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import PolicyOutcome
from mtasts.tlsrpt.collect.postfix_log import PostfixLogReader, line_day, to_session
from mtasts.tlsrpt.store import TlsRptStore

log = logging.getLogger(__name__)

Lookup = Callable[[str], Awaitable[CacheEntry | None]]
POLICY_TTL = 300.0  # seconds a domain's cached policy is reused by the reader
QUEUE_LINES = 10_000  # lines read ahead of the counting (bounded memory)


def policy_from_entry(entry: CacheEntry | None, now: float) -> PolicyOutcome | None:
    """The MTA-STS policy a cache entry says a sender applied (None: no-policy-found)."""
    if entry is None or entry.policy is None or not policy_valid(entry, now):
        return None
    text = (entry.raw_text or "").replace("\r\n", "\n")
    lines = tuple(line.strip() for line in text.split("\n") if line.strip())
    mx = tuple(str(p) for p in entry.policy.mx)
    return PolicyOutcome(PolicyType.STS, entry.domain, lines, mx)


class CachedPolicies:
    """Policies from the cache, each domain looked up at most once per ``ttl`` seconds."""

    def __init__(self, lookup: Lookup, *, ttl: float = POLICY_TTL) -> None:
        self.lookup = lookup
        self.ttl = ttl
        self._seen: dict[str, tuple[float, PolicyOutcome | None]] = {}

    async def get(self, domain: str) -> PolicyOutcome | None:
        now = wall()
        hit = self._seen.get(domain)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        policy = policy_from_entry(await self.lookup(domain), now)
        if len(self._seen) > 100_000:
            self._seen.clear()
        self._seen[domain] = (now, policy)
        return policy


@dataclass(slots=True)
class LogStats:
    lines: int = 0
    sessions: int = 0
    flushes: int = 0


def _read_ahead(lines: Iterable[str], loop: asyncio.AbstractEventLoop) -> asyncio.Queue[Any]:
    """A thread reads ``lines`` into a bounded queue (None at the end): a blocking
    ``tail -F`` pipe never stalls the flushes."""
    queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_LINES)

    def pump() -> None:
        try:
            for line in lines:
                asyncio.run_coroutine_threadsafe(queue.put(line), loop).result()
        except Exception as exc:  # the read failed: the counting side says why
            asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    threading.Thread(target=pump, name="postfix-log-reader", daemon=True).start()
    return queue


async def count_log(
    lines: Iterable[str],
    store: TlsRptStore,
    policies: CachedPolicies,
    *,
    flush_interval: float = 5.0,
    today: Callable[[], date] = utc_today,
) -> LogStats:
    """Count every TLS outcome in ``lines`` into ``store`` until the end of the input or
    SIGTERM/SIGINT; the counters are flushed every ``flush_interval`` seconds and last."""
    with stop_event(where_possible=True) as stop:  # a reader in a thread has no signals
        return await _count(lines, store, policies, stop, flush_interval, today)


async def _count(
    lines: Iterable[str],
    store: TlsRptStore,
    policies: CachedPolicies,
    stop: asyncio.Event,
    flush_interval: float,
    today: Callable[[], date],
) -> LogStats:
    loop = asyncio.get_running_loop()
    queue = _read_ahead(lines, loop)
    reader, counters, stats = PostfixLogReader(), Counters(), LogStats()
    deadline = loop.time() + flush_interval
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            getting = asyncio.ensure_future(queue.get())
            await asyncio.wait(
                {getting, stopping},
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not getting.done():
                getting.cancel()
            else:
                line = getting.result()
                if line is None:
                    break
                if isinstance(line, Exception):
                    raise line
                stats.lines += 1
                outcome = reader.feed(line)
                if outcome is not None:
                    policy = await policies.get(outcome.domain)
                    session = to_session(outcome, _constant(policy))
                    counters.add(line_day(line, today()), session)
                    stats.sessions += 1
            if loop.time() >= deadline:
                stats.flushes += await _flush(store, counters, last=False)
                deadline = loop.time() + flush_interval
    finally:
        stopping.cancel()
    stats.flushes += await _flush(store, counters, last=True)
    return stats


def _constant(policy: PolicyOutcome | None) -> Callable[[str], PolicyOutcome | None]:
    return lambda _domain: policy


async def _flush(store: TlsRptStore, counters: Counters, *, last: bool) -> int:
    """Write the counters; a failure keeps them for the next flush (the last one raises:
    the command then exits non-zero, and reading the same log again counts it again)."""
    if not len(counters):
        return 0
    batch = counters.drain()
    try:
        await store.add_counters(batch)
    except Exception as exc:
        counters.merge(batch)
        await store.reset()
        if last:
            raise
        log.warning("the TLS-RPT store failed (%s): the counters are kept for the next flush", exc)
        return 0
    return 1


async def open_policies(
    cache_url: str, daemon: str | None
) -> tuple[Lookup, Callable[[], Awaitable[None]]]:
    """(domain -> cache entry, close): the daemon's MTA-STS cache, read directly when it
    is shared (``cache_url``), or through the running daemon's control URL ``daemon``."""
    from mtasts.names import normalize_domain

    if daemon:
        import httpx

        from mtasts.errors import ServiceUnavailable
        from mtasts.sts.cache.base import entry_from_json

        client = httpx.AsyncClient(base_url=daemon.rstrip("/"), timeout=30)

        async def via_daemon(domain: str) -> CacheEntry | None:
            try:
                answer = await client.get(f"/cache/{normalize_domain(domain)}")
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(
                    f"cannot reach the daemon at {daemon}: {exc}: is it running, with this "
                    "[daemon] metrics address?",
                    code="daemon.unreachable",
                ) from exc
            return entry_from_json(answer.json()) if answer.status_code == 200 else None

        return via_daemon, client.aclose
    from mtasts.sts.cache import open_cache, require_shared

    require_shared(cache_url)
    cache = await open_cache(cache_url)
    return cache.get, cache.aclose


async def count_source(
    lines: Iterable[str],
    store_url: str,
    *,
    cache_url: str,
    daemon: str | None = None,
    flush_interval: float = 5.0,
) -> LogStats:
    """``collect --postfix-log``: the TLS outcomes of ``lines`` (a Postfix log) into the
    store at ``store_url``, under the policies of the daemon's cache (:func:`open_policies`)."""
    lookup, close = await open_policies(cache_url, daemon)
    store = TlsRptStore.open(store_url)
    try:
        await store.create()
        return await count_log(lines, store, CachedPolicies(lookup), flush_interval=flush_interval)
    finally:
        await store.close()
        await close()
