"""The policy a domain publishes now, as a sender would fetch it, for the domain page.

The sender's own discovery (:func:`mtasts.sts.discover.discover` and
:func:`~mtasts.sts.discover.fetch_policy`, with the configured DNS server, CA and
timeouts), bounded by ``timeout`` seconds, cached ``ttl`` seconds per domain (failures
too), one fetch per domain however many pages wait for it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from mtasts.clock import Clock, monotonic, wall
from mtasts.config import Settings
from mtasts.errors import MtastsError
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient, Timeouts
from mtasts.net.tls import client_context
from mtasts.sts.discover import discover, fetch_policy
from mtasts.sts.refresh import TxtKind
from mtasts.web.views import policy_fields


@dataclass(frozen=True, slots=True)
class Published:
    """What a sender finds now: status ``sts`` (with the policy), ``none`` (no record)
    or ``error`` (with the reason)."""

    domain: str
    status: str
    record_id: str | None = None
    text: str | None = None
    mode: str | None = None
    mx: tuple[str, ...] = ()
    max_age: str | None = None
    error: str | None = None
    fetched_at: float = 0.0

    @property
    def fields(self) -> tuple[str | None, list[str], str | None] | None:
        if self.status != "sts":
            return None
        return self.mode, list(self.mx), self.max_age

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "status": self.status,
            "record_id": self.record_id,
            "policy_text": self.text,
            "mode": self.mode,
            "mx": list(self.mx),
            "max_age": self.max_age,
            "error": self.error,
            "fetched_at": self.fetched_at,
        }


class LivePolicies:
    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 5.0,
        ttl: float = 300.0,
        clock: Clock = monotonic,
        wall: Clock = wall,
    ) -> None:
        t = settings.timeouts
        per_step = min(timeout, t.total)
        self.dns = DnsClient(settings.nameserver, timeout=min(t.dns, per_step))
        self.https = HttpsClient(
            self.dns,
            client_context(str(settings.ca_file) if settings.ca_file else None),
            port=settings.https_port,
            timeouts=Timeouts(
                connect=min(t.connect, per_step), read=min(t.read, per_step), total=per_step
            ),
        )
        self.timeout = timeout
        self.ttl = ttl
        #: monotonic: the cache's TTL
        self.clock = clock
        #: the epoch clock: a published policy's ``fetched_at``
        self.wall = wall
        self._cache: dict[str, tuple[float, Published]] = {}
        self._inflight: dict[str, asyncio.Task[Published]] = {}

    async def get(self, domain: str) -> Published:
        now = self.clock()
        hit = self._cache.get(domain)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        task = self._inflight.get(domain)
        if task is None:
            task = asyncio.ensure_future(self._fetch(domain))
            self._inflight[domain] = task
            task.add_done_callback(lambda _: self._inflight.pop(domain, None))
        # shield: a page whose client went away does not cancel the others' fetch
        return await asyncio.shield(task)

    async def _fetch(self, domain: str) -> Published:
        started = self.wall()
        try:
            out = await asyncio.wait_for(self._lookup(domain), self.timeout)
        except TimeoutError:
            out = Published(
                domain, "error", error=f"no answer within {self.timeout:g} s", fetched_at=started
            )
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[domain] = (self.clock(), out)
        return out

    async def _lookup(self, domain: str) -> Published:
        now = self.wall()
        txt = await discover(self.dns, domain)
        if txt.kind is TxtKind.NONE:
            why = txt.notice.message if txt.notice else "no _mta-sts record"
            return Published(domain, "none", error=why, fetched_at=now)
        if txt.kind is not TxtKind.RECORD:
            why = txt.notice.message if txt.notice else "DNS failed"
            return Published(domain, "error", error=why, fetched_at=now)
        try:
            fetched = await fetch_policy(self.https, domain)
        except MtastsError as exc:
            return Published(
                domain, "error", record_id=txt.record_id, error=exc.message, fetched_at=now
            )
        mode, mx, max_age = policy_fields(fetched.raw_text.splitlines())
        return Published(
            domain,
            "sts",
            record_id=txt.record_id,
            text=fetched.raw_text,
            mode=mode,
            mx=tuple(mx),
            max_age=max_age,
            fetched_at=now,
        )

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await self.https.aclose()
