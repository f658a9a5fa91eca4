"""The sender's MTA-STS resolver: cache + discovery + refresh rules -> :class:`PolicyLookup`.

I/O orchestration around the pure rules of :mod:`mtasts.sts.refresh`. It never raises
for a network outcome: every outcome is a :class:`PolicyLookup`.

* A lookup with a usable cached answer returns it at once; if that answer is due for a
  re-check, the re-check runs in the background (a slow policy host never holds a
  caller that has a cached answer).
* Concurrent lookups of one domain share one resolution (single flight): one TXT query
  and at most one HTTPS fetch however many callers wait.
* Cold cache (RFC 8461 §5.1 leaves it open whether to wait): the caller waits for the
  resolution, bounded by the fetch's total timeout; with ``cold_wait`` set, the caller
  gets UNDETERMINED after that many seconds while the resolution goes on and caches
  its result for the next lookup.
* Policies of domains still in use are refreshed before they expire
  (:meth:`Resolver.refresh_due`, run periodically by :meth:`Resolver.start`), at most
  ``concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from types import TracebackType

from mtasts.clock import Clock, wall
from mtasts.config import Settings
from mtasts.errors import FetchError, Notice, PolicyError
from mtasts.names import normalize_domain
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient, Timeouts
from mtasts.net.tls import client_context
from mtasts.sts.cache import PolicyCache, open_cache
from mtasts.sts.cache.memory import MemoryCache
from mtasts.sts.cache.tier import MemoryTier
from mtasts.sts.discover import discover, fetch_policy
from mtasts.sts.lookup import LookupStatus, PolicyLookup, Source
from mtasts.sts.refresh import (
    DEFAULT_RULES,
    Action,
    CacheEntry,
    Freshness,
    RefreshRules,
    after_fetch_failed,
    after_fetch_ok,
    alert_worthy,
    answer,
    decide,
    fresh_until,
    freshness,
    policy_answer,
)

log = logging.getLogger(__name__)


#: A domain counts as "in use" (proactively refreshed) this long after its last lookup.
IN_USE_WINDOW = 7 * 86400.0
#: in-use domains scanned between two yields to the event loop (:meth:`refresh_due`)
SCAN_SLICE = 500
#: answers kept for reuse (:meth:`Resolver.peek`); beyond this the memo starts over
MEMO_SIZE = 200_000

#: ``_flight``'s "no entry read yet" (the background re-check reads its own)
_UNREAD: CacheEntry | None = CacheEntry(domain="", checked_at=0.0, recheck_at=0.0)


class Resolver:
    """Look up MTA-STS policies the way RFC 8461 §3-§5 asks a sender to."""

    def __init__(
        self,
        dns: DnsClient,
        https: HttpsClient,
        cache: PolicyCache | None = None,
        *,
        clock: Clock = wall,
        rules: RefreshRules = DEFAULT_RULES,
        concurrency: int = 32,
        cold_wait: float | None = None,
    ) -> None:
        self.dns = dns
        self.https = https
        self.cache: PolicyCache = cache if cache is not None else MemoryCache()
        self.clock = clock
        self.rules = rules
        self.cold_wait = cold_wait
        self._concurrency = max(1, concurrency)
        self._limit = asyncio.Semaphore(self._concurrency)
        self._inflight: dict[str, asyncio.Task[PolicyLookup]] = {}
        self._background: set[asyncio.Task[PolicyLookup]] = set()
        self._in_use: dict[str, float] = {}
        self._proactive: asyncio.Task[None] | None = None
        self._closed = False
        # Entries the cache backend failed to store (disk full, locked, Redis OOM): kept
        # here so a broken backend costs a warning, not a refetch per lookup.
        self._unstored = MemoryCache(10_000)
        self._cache_failing = False
        #: a synchronous read of the cache, when the backend has one (memory:, a tier)
        self._peek_entry: Callable[[str], CacheEntry | None] | None = getattr(
            self.cache, "peek", None
        )
        #: the whole cache is in this process (a miss in memory is a miss)
        self._memory_only = isinstance(self.cache, MemoryCache)
        #: ``current_entry(name)``: the cache entry of canonical ``name`` held in this
        #: process now (no I/O); the memory cache's own read when that is the whole cache
        self.current_entry: Callable[[str], CacheEntry | None] = self._memory_entry
        if isinstance(self.cache, MemoryCache):
            self.current_entry = self.cache.peek  # never refuses a write: nothing unstored
        #: name -> (entry, reusable until, the answer it gave): see :meth:`peek`
        self._memo: dict[str, tuple[CacheEntry, float, PolicyLookup]] = {}

    @classmethod
    async def open(cls, settings: Settings | None = None, **options: object) -> Resolver:
        """A resolver built from :class:`~mtasts.config.Settings` (its DNS, CA, port, cache)."""
        settings = settings or Settings()
        t = settings.timeouts
        dns = DnsClient(settings.nameserver, timeout=t.dns)
        https = HttpsClient(
            dns,
            client_context(str(settings.ca_file) if settings.ca_file else None),
            port=settings.https_port,
            timeouts=Timeouts(connect=t.connect, read=t.read, total=t.total),
        )
        cache = await open_cache(settings.cache.url)
        if not isinstance(cache, MemoryCache):
            cache = MemoryTier(cache)  # answers from memory between backend reads
        return cls(dns, https, cache, **options)  # type: ignore[arg-type]

    async def __aenter__(self) -> Resolver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop background work and release the HTTPS client and the cache (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._proactive is not None:
            self._proactive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._proactive
        pending = set(self._background) | set(self._inflight.values())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self.https.aclose()
        await self.cache.aclose()

    # --- lookups ----------------------------------------------------------------------

    async def lookup(self, domain: str) -> PolicyLookup:
        """The policy that applies to ``domain`` now. Raises only DomainNameError."""
        return await self.lookup_name(normalize_domain(domain))

    async def lookup_name(self, name: str) -> PolicyLookup:
        """:meth:`lookup` for a name already in canonical form (``normalize_domain``).

        The cache is read once: from memory when it can be (:meth:`peek`), else from
        the backend; a miss hands that entry to the resolution instead of reading it
        again.
        """
        entry, hit = self._peek(name)
        if hit is not None:
            return hit
        now = self.clock()
        if entry is None and not self._memory_only:
            entry = await self._cache_get(name)
            hit = self._from_entry(name, entry, now) if entry is not None else None
        if hit is None:
            hit = await self._wait(name, entry)
        self._used(name, now, hit)
        return hit

    def peek(self, name: str) -> PolicyLookup | None:
        """The answer for canonical ``name`` if the cache gives one without I/O, else None.

        Synchronous (the daemon answers from it inside ``data_received``). The answer
        built from an entry is kept and handed out again, as long as the cache holds
        the same entry object, until :func:`~mtasts.sts.refresh.fresh_until` (the TXT
        re-check, max_age expiry, the proactive refresh): no freshness rules, no new
        :class:`PolicyLookup` per request. A stale entry is answered and re-checked in
        the background, as :meth:`lookup` does.
        """
        return self._peek(name)[1]

    def peek_for(self, name: str) -> tuple[PolicyLookup, float, CacheEntry] | None:
        """:meth:`peek`, with how many seconds the same answer holds and the cache entry
        it came from: while :meth:`current_entry` is that entry and the seconds last,
        the answer is the same object (the daemon keeps its rendered reply that long).
        0 seconds for a stale entry (answered, being re-checked: not to be kept)."""
        entry, result = self._peek(name)
        if result is None or entry is None:
            return None
        memo = self._memo.get(name)
        if memo is None or memo[0] is not entry:
            return result, 0.0, entry
        return result, memo[1] - self.clock(), entry

    def _peek(self, name: str) -> tuple[CacheEntry | None, PolicyLookup | None]:
        """(the entry in memory, the answer it gives) -- either may be None."""
        entry = self._memory_entry(name)
        if entry is None:
            return None, None
        now = self.clock()
        memo = self._memo.get(name)
        if memo is not None and memo[0] is entry and now < memo[1]:
            result: PolicyLookup | None = memo[2]
        else:
            result = self._from_entry(name, entry, now)
            if result is None:
                return entry, None
        assert result is not None
        self._used(name, now, result)
        return entry, result

    def _memory_entry(self, name: str) -> CacheEntry | None:
        """The entry if the cache holds it in this process (no I/O), else None."""
        peek_entry = self._peek_entry
        entry = peek_entry(name) if peek_entry is not None else None
        if len(self._unstored):  # written here because the backend refused it
            entry = self._unstored.peek(name) or entry
        return entry

    def _from_entry(self, name: str, entry: CacheEntry, now: float) -> PolicyLookup | None:
        """The cached answer (re-checked in the background if stale), or None on a miss."""
        state = freshness(entry, now, self.rules)
        if state is Freshness.MISS:
            return None
        cached = answer(entry, now)
        if cached is None:
            return None
        if state is Freshness.STALE:
            self._revalidate(name)
        else:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[name] = (entry, fresh_until(entry, now, self.rules), cached)
        return cached

    def _used(self, name: str, now: float, result: PolicyLookup) -> None:
        # Only domains with a policy are refreshed proactively (RFC 8461 §3.3 is about
        # cached policies); remembering every domain ever looked up would grow without
        # bound on an MTA that sends to millions of domains without MTA-STS.
        if result.policy is not None:
            self._in_use[name] = now
        elif name in self._in_use:
            del self._in_use[name]

    async def _wait(self, name: str, entry: CacheEntry | None) -> PolicyLookup:
        """Resolve ``name`` (its cache entry already read: ``entry``) and wait for it."""
        task = self._flight(name, entry)
        if self.cold_wait is None:
            return await asyncio.shield(task)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.cold_wait)
        except TimeoutError:
            return PolicyLookup(
                domain=name,
                status=LookupStatus.UNDETERMINED,
                source=Source.FETCHED,
                detail=f"still resolving after {self.cold_wait:g} s; try again shortly",
                cause=Notice("lookup.pending", "the policy is still being fetched"),
            )

    async def refresh(self, domain: str) -> PolicyLookup:
        """Re-check ``domain`` now (TXT, then fetch if the rules say so) and wait for it."""
        return await asyncio.shield(self._flight(normalize_domain(domain)))

    def _flight(self, name: str, entry: CacheEntry | None = _UNREAD) -> asyncio.Task[PolicyLookup]:
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.create_task(self._resolve(name, entry), name=f"mta-sts {name}")
            self._inflight[name] = task
            task.add_done_callback(lambda _t: self._inflight.pop(name, None))
        return task

    def _revalidate(self, name: str) -> None:
        if name in self._inflight:
            return
        task = asyncio.create_task(self._limited(name), name=f"mta-sts refresh {name}")
        self._inflight[name] = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(lambda _t: self._inflight.pop(name, None))

    async def _limited(self, name: str) -> PolicyLookup:
        async with self._limit:
            return await self._resolve(name)

    async def _resolve(self, name: str, entry: CacheEntry | None = _UNREAD) -> PolicyLookup:
        """One resolution: TXT, the refresh decision, maybe a fetch; the cache updated.

        ``entry``: the cache entry the waiting lookup read just now (not read twice);
        a background re-check reads its own.
        """
        if entry is _UNREAD:
            entry = await self._cache_get(name)
        txt = await discover(self.dns, name)
        now = self.clock()
        decision = decide(entry, txt, now, domain=name, rules=self.rules)
        log.debug("%s: %s (%s)", name, decision.action, decision.reason)
        if decision.action is Action.UNDETERMINED:
            return PolicyLookup(
                domain=name,
                status=LookupStatus.UNDETERMINED,
                source=Source.FETCHED,
                detail=txt.notice.message if txt.notice else "the DNS lookup failed",
                cause=txt.notice,
            )
        assert decision.entry is not None
        if decision.action is not Action.FETCH:
            await self._cache_set(decision.entry)
            source = Source.FETCHED if decision.action is Action.NO_POLICY else Source.CACHE
            return answer(decision.entry, now, source) or _unusable(decision.entry)
        return await self._fetch(decision.entry, now)

    async def _fetch(self, entry: CacheEntry, now: float) -> PolicyLookup:
        record_id = entry.txt_id
        assert record_id is not None
        try:
            fetched = await fetch_policy(self.https, entry.domain)
        except (FetchError, PolicyError) as exc:
            done = self.clock()
            failed = after_fetch_failed(
                entry, record_id, exc.notice(), exc.result_type, done, self.rules
            )
            await self._cache_set(failed)
            if alert_worthy(failed):
                # RFC 8461 §3.3 / §10.2: alert when a refresh fails unless mode is none.
                log.warning(
                    "MTA-STS policy refresh for %s failed: %s; the cached policy applies until %s",
                    entry.domain,
                    exc,
                    failed.expires_at,
                )
            return answer(failed, done, Source.FETCHED) or _unusable(failed)
        for repair in fetched.policy.repairs:
            # The policy deviates from RFC 8461 §3.2 in a way senders tolerate (issue 16).
            log.debug("MTA-STS policy of %s: %s [%s]", entry.domain, repair.message, repair.code)
        done = self.clock()
        stored = after_fetch_ok(entry, record_id, fetched.policy, fetched.raw_text, done)
        await self._cache_set(stored)
        return policy_answer(stored, Source.FETCHED)

    # --- the cache, failures contained -----------------------------------------------

    async def _cache_get(self, name: str) -> CacheEntry | None:
        try:
            entry = await self.cache.get(name)
        except Exception as exc:  # any backend failure: a miss, never a failed lookup
            self._cache_trouble("read", name, exc)
            entry = None
        if len(self._unstored):
            # Written here because the backend refused it, so newer than the backend's.
            return await self._unstored.get(name) or entry
        return entry

    async def _cache_set(self, entry: CacheEntry) -> None:
        try:
            await self.cache.set(entry)
        except Exception as exc:
            self._cache_trouble("store", entry.domain, exc)
            await self._unstored.set(entry)
            return
        if len(self._unstored):
            await self._unstored.delete(entry.domain)
        if self._cache_failing:
            self._cache_failing = False
            log.warning("policy cache %s works again", self.cache.url)

    def _cache_trouble(self, what: str, name: str, exc: Exception) -> None:
        if not self._cache_failing:
            self._cache_failing = True
            log.warning(
                "policy cache %s failed to %s the entry of %s (%s: %s); lookups go on with "
                "entries kept in memory until it works again",
                self.cache.url,
                what,
                name,
                type(exc).__name__,
                exc,
            )
        else:
            log.debug("policy cache %s: %s %s failed: %s", self.cache.url, what, name, exc)

    async def wait_idle(self) -> None:
        """Wait until no background re-check is running (tests, short-lived commands)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    # --- proactive refresh ------------------------------------------------------------

    async def refresh_due(self) -> int:
        """One proactive pass: re-check every in-use domain whose entry is due.

        Returns how many re-checks ran; waits for them (at most ``concurrency`` at once).
        """
        now = self.clock()
        due: list[str] = []
        for n, (name, last_used) in enumerate(list(self._in_use.items())):
            if n % SCAN_SLICE == SCAN_SLICE - 1:
                # a scan of a million in-use domains must not hold the loop: lookups
                # are answered between slices (p99 during a refresh wave)
                await asyncio.sleep(0)
            if now - last_used > IN_USE_WINDOW:
                self._in_use.pop(name, None)
                continue
            entry = self._memory_entry(name)
            if entry is None and not self._memory_only:
                entry = await self._cache_get(name)
            if freshness(entry, now, self.rules) is Freshness.STALE:
                due.append(name)
        due.reverse()
        ran = 0

        async def worker() -> None:
            # One re-check task at a time per worker: a pass over 100,000 due domains
            # keeps ``concurrency`` tasks alive, not 100,000 waiting on the semaphore.
            nonlocal ran
            while due:
                name = due.pop()
                self._revalidate(name)
                task = self._inflight.get(name)
                if task is not None:
                    ran += 1
                    await asyncio.wait([task])  # not cancelled with this pass (shared)

        await asyncio.gather(*(worker() for _ in range(min(self._concurrency, len(due)))))
        return ran

    def start(self, interval: float = 300.0) -> None:
        """Run :meth:`refresh_due` every ``interval`` seconds until :meth:`aclose`."""
        if self._proactive is None:
            self._proactive = asyncio.create_task(self._proactive_loop(interval))

    async def _proactive_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh_due()
            except Exception:  # keep refreshing; one bad pass must not stop the loop
                log.exception("proactive MTA-STS refresh pass failed")


def _unusable(entry: CacheEntry) -> PolicyLookup:
    return PolicyLookup(
        domain=entry.domain,
        status=LookupStatus.UNDETERMINED,
        source=Source.FETCHED,
        detail="no usable policy state (this is a bug; please report it)",
    )
