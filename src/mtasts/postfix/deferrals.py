"""Log the answers that make Postfix defer mail, at most one line per domain per minute.

An operator must see why mail to a domain is held (issue 10): an enforce policy that
names none of the current MX hosts (``match=mx-not-in-mta-sts-policy.invalid``), a
policy that could not be determined (``TEMP``), a lookup that timed out (``TIMEOUT``).
Postfix retries deferred mail and asks again for every message, so the same reason
repeats many times a second: the first answer per domain in each ``interval`` is logged
at info level, the rest are counted, and the next line for the domain says how many
were left out. Cost per deferring answer: one dict lookup and a clock read.
"""

from __future__ import annotations

import logging

from mtasts.clock import Clock, monotonic

log = logging.getLogger("mtasts.daemon")

#: seconds between two lines for one domain
DEFAULT_INTERVAL = 60.0
#: domains tracked at once; beyond this, domains whose interval ended are forgotten
MAX_DOMAINS = 10_000


class DeferralLog:
    """``note(domain, reason)`` for every answer that defers mail; logs rate-limited."""

    __slots__ = ("_clock", "_seen", "interval", "logger", "max_domains")

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL,
        *,
        clock: Clock = monotonic,
        logger: logging.Logger = log,
        max_domains: int = MAX_DOMAINS,
    ) -> None:
        self.interval = interval
        self.logger = logger
        self.max_domains = max_domains
        self._clock = clock
        #: domain -> [when its line was logged, answers left out since]
        self._seen: dict[str, list[float]] = {}

    def note(self, domain: str, reason: str) -> bool:
        """Count one deferring answer; True if a line was logged for it."""
        now = self._clock()
        seen = self._seen.get(domain)
        if seen is not None and now - seen[0] < self.interval:
            seen[1] += 1
            return False
        left_out = int(seen[1]) if seen is not None else 0
        if seen is None and len(self._seen) >= self.max_domains:
            self._prune(now)
        self._seen[domain] = [now, 0]
        if left_out:
            self.logger.info(
                "deferring mail to domain=%s: %s (%d more such answers in the last %.0f s "
                "not logged)",
                domain,
                reason,
                left_out,
                now - seen[0] if seen is not None else 0.0,
            )
        else:
            self.logger.info("deferring mail to domain=%s: %s", domain, reason)
        return True

    def _prune(self, now: float) -> None:
        for domain in [d for d, s in self._seen.items() if now - s[0] >= self.interval]:
            del self._seen[domain]
        if len(self._seen) >= self.max_domains:
            self._seen.clear()

    def __len__(self) -> int:
        return len(self._seen)
