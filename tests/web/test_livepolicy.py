"""The published policy beside the reported one: fetched as a sender fetches it, from
the lab's real DNS and HTTPS, bounded in time, cached, one fetch per domain."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mtasts.config import Settings
from mtasts.lab import Lab, Scenario
from mtasts.lab.scenario import PolicyHostSpec
from mtasts.lab.testing import LabPool, healthy_domain
from mtasts.web.livepolicy import LivePolicies

pytestmark = pytest.mark.lab


@pytest.fixture
async def lab_factory() -> AsyncIterator[Callable[[Scenario], Awaitable[Lab]]]:
    async with LabPool() as pool:
        yield pool.start


def _settings(lab: Lab) -> Settings:
    return Settings(nameserver=lab.nameserver, ca_file=lab.ca_file, https_port=lab.https_port)


async def test_fetch_cache_timeout_and_failures(
    lab_factory: Callable[[Scenario], Awaitable[Lab]],
) -> None:
    lab = await lab_factory(
        healthy_domain("good.test", mode="testing", policy_id="20261120")
        + healthy_domain("slow.test", policy_host=PolicyHostSpec(delay_ms=5000))
        + healthy_domain("gone.test", policy_host=PolicyHostSpec(status=404))
    )
    now = [0.0]
    live = LivePolicies(_settings(lab), timeout=1.0, ttl=300, clock=lambda: now[0])
    try:
        first, *others = await asyncio.gather(*(live.get("good.test") for _ in range(5)))
        assert all(o is first for o in others)  # one fetch for all waiting pages
        assert (first.status, first.record_id, first.mode) == ("sts", "20261120", "testing")
        assert first.mx == ("mx1.good.test",)
        assert first.max_age == "86400"
        assert first.fields == ("testing", ["mx1.good.test"], "86400")
        assert await live.get("good.test") is first  # cached
        now[0] = 301.0
        assert await live.get("good.test") is not first  # expired: fetched again
        started = time.monotonic()
        slow = await live.get("slow.test")
        assert time.monotonic() - started < 3
        assert slow.status == "error"
        assert "within 1 s" in (slow.error or "")
        assert slow.fields is None  # nothing to compare with
        gone = await live.get("gone.test")
        assert gone.status == "error"
        assert "404" in (gone.error or "")
        none = await live.get("nothing.test")
        assert none.status == "none"
    finally:
        await live.aclose()
