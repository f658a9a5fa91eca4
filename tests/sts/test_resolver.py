"""The resolver against the lab: the stateful scenarios of sending-anchors.md §2.5.

A fake clock drives the cache and refresh rules (the lab's DNS and HTTPS are real); the
lab counts the HTTPS GETs and DNS queries each scenario causes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from mtasts.lab.lab import Lab
from mtasts.lab.scenario import DnsSpec, PolicyHostSpec, Scenario
from mtasts.lab.testing import LabPool, healthy_domain, policy_text
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient, Timeouts
from mtasts.net.tls import client_context
from mtasts.results import ResultType
from mtasts.sts.cache import PolicyCache, open_cache
from mtasts.sts.lookup import LookupStatus, Source
from mtasts.sts.policy import Mode
from mtasts.sts.resolver import Resolver

pytestmark = pytest.mark.lab

T0 = 1_800_000_000.0
TTL = 300  # the lab's DNS TTL: the resolver re-checks the TXT record after it


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


LabFactory = Callable[[Scenario], Awaitable[Lab]]


@pytest.fixture
async def lab_factory() -> AsyncIterator[LabFactory]:
    async with LabPool() as pool:
        yield pool.start


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_resolver(clock: FakeClock) -> AsyncIterator[Callable[..., Resolver]]:
    made: list[Resolver] = []

    def make(
        lab: Lab, cache: PolicyCache | None = None, *, total: float = 10.0, **options: object
    ) -> Resolver:
        dns = DnsClient(lab.nameserver, timeout=1.0)
        https = HttpsClient(
            dns,
            client_context(str(lab.ca_file)),
            port=lab.https_port,
            timeouts=Timeouts(connect=2.0, read=total, total=total),
        )
        resolver = Resolver(dns, https, cache, clock=clock, **options)  # type: ignore[arg-type]
        made.append(resolver)
        return resolver

    yield make
    for resolver in made:
        await resolver.aclose()


def gets(lab: Lab, domain: str = "a.test") -> int:
    return len(lab.policy_requests(domain))


def txt_queries(lab: Lab, domain: str = "a.test") -> int:
    return sum(1 for q in lab.dns_queries if q.name == f"_mta-sts.{domain}" and q.rdtype == "TXT")


async def test_id_bump_refetches_and_unchanged_id_does_not(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """Body changed under the same id: cached policy kept. New id: refetched (§3, §3.1)."""
    lab = await lab_factory(healthy_domain("a.test", policy_id="1"))
    resolver = make_resolver(lab)
    first = await resolver.lookup("a.test")
    assert (first.status, first.source, first.record_id) == (LookupStatus.STS, Source.FETCHED, "1")
    assert first.mode is Mode.ENFORCE

    lab.set_policy("a.test", policy_text(("mx1.a.test",), mode="testing"))
    clock.advance(TTL + 1)
    stale = await resolver.lookup("a.test")  # served at once, re-checked in the background
    await resolver.wait_idle()
    kept = await resolver.lookup("a.test")
    assert stale.mode is Mode.ENFORCE
    assert kept.mode is Mode.ENFORCE
    assert gets(lab) == 1

    lab.set_txt("_mta-sts.a.test", ["v=STSv1; id=2"])
    clock.advance(TTL + 1)
    await resolver.lookup("a.test")
    await resolver.wait_idle()
    bumped = await resolver.lookup("a.test")
    assert (bumped.record_id, bumped.mode) == ("2", Mode.TESTING)
    assert gets(lab) == 2


async def test_max_age_expiry_refetches_even_with_unchanged_id(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """STS-3.2-g: max_age counts from the last fetch; then the policy is fetched again
    even though the id did not change (pmsr and mox extend it instead: #109, #113)."""
    lab = await lab_factory(healthy_domain("a.test", max_age=3600))
    resolver = make_resolver(lab)
    await resolver.lookup("a.test")
    lab.set_policy("a.test", policy_text(("mx1.a.test",), mode="none", max_age=3600))
    clock.advance(3601)
    expired = await resolver.lookup("a.test")
    assert expired.source is Source.FETCHED
    assert expired.mode is Mode.NONE
    assert expired.record_id == "1"
    assert gets(lab) == 2


async def test_txt_removed_keeps_the_cached_policy_until_it_expires(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """STS-3.1-h / E-28: TXT removed -> cached policy applies; after max_age -> no policy."""
    lab = await lab_factory(healthy_domain("a.test", max_age=86400))
    resolver = make_resolver(lab)
    await resolver.lookup("a.test")
    lab.set_txt("_mta-sts.a.test", [])
    clock.advance(TTL + 1)
    await resolver.lookup("a.test")
    await resolver.wait_idle()
    kept = await resolver.lookup("a.test")
    assert kept.status is LookupStatus.STS
    assert kept.mode is Mode.ENFORCE
    assert "no usable _mta-sts record" in kept.detail
    clock.advance(86400)
    gone = await resolver.lookup("a.test")
    assert gone.status is LookupStatus.NO_POLICY
    assert gone.policy_type == "no-policy-found"
    assert gets(lab) == 1


async def test_https_500_with_a_cached_policy_keeps_it_and_logs(
    lab_factory: LabFactory,
    make_resolver: Callable[..., Resolver],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """STS-3.3-n / STS-3.3-p: new id but HTTPS 500 -> cached enforce still applies, the
    failure is kept for TLS-RPT (STS-6-b) and a warning is logged."""
    lab = await lab_factory(healthy_domain("a.test"))
    resolver = make_resolver(lab)
    await resolver.lookup("a.test")
    lab.set_policy_host("a.test", status=500)
    lab.set_txt("_mta-sts.a.test", ["v=STSv1; id=2"])
    clock.advance(TTL + 1)
    with caplog.at_level(logging.WARNING, logger="mtasts.sts.resolver"):
        await resolver.lookup("a.test")
        await resolver.wait_idle()
    after = await resolver.lookup("a.test")
    assert after.status is LookupStatus.STS
    assert after.record_id == "1"
    assert after.mode is Mode.ENFORCE
    assert after.refresh_error is ResultType.STS_POLICY_FETCH_ERROR
    assert any("a.test" in r.getMessage() for r in caplog.records)
    assert gets(lab) == 2


async def test_dns_servfail_with_and_without_a_cached_policy(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """E-11: SERVFAIL is not "no policy": a cached policy applies; with nothing cached the
    answer is UNDETERMINED (exit 3 in `mtasts query`)."""
    lab = await lab_factory(healthy_domain("a.test") + healthy_domain("b.test"))
    resolver = make_resolver(lab)
    await resolver.lookup("a.test")
    lab.set_dns_fault("_mta-sts.a.test", "servfail")
    lab.set_dns_fault("_mta-sts.b.test", "servfail")
    clock.advance(TTL + 1)
    await resolver.lookup("a.test")
    await resolver.wait_idle()
    cached = await resolver.lookup("a.test")
    assert cached.status is LookupStatus.STS
    unknown = await resolver.lookup("b.test")
    assert unknown.status is LookupStatus.UNDETERMINED
    assert not unknown.determined
    assert unknown.cause is not None
    assert unknown.cause.code == "dns.servfail"


async def test_slow_host_with_a_cached_policy_returns_at_once(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """A policy host taking 10 s never holds a caller that has a cached answer."""
    lab = await lab_factory(healthy_domain("a.test"))
    resolver = make_resolver(lab, total=30.0)
    await resolver.lookup("a.test")
    lab.set_policy_host("a.test", delay_ms=10_000)
    lab.set_txt("_mta-sts.a.test", ["v=STSv1; id=2"])
    clock.advance(TTL + 1)
    await resolver.lookup("a.test")  # starts the background refresh
    # Wait until the background GET has reached the slow host (a fixed sleep is too short
    # on a loaded machine, and the GET count below would then be read too early).
    for _ in range(1000):
        if gets(lab) == 2:
            break
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    results = [await resolver.lookup("a.test") for _ in range(100)]
    elapsed = time.perf_counter() - started
    assert all(r.status is LookupStatus.STS and r.record_id == "1" for r in results)
    assert elapsed < 0.5, f"100 cached lookups took {elapsed:.3f} s"
    assert gets(lab) == 2  # one background GET, however many lookups


async def test_concurrent_first_lookups_share_one_fetch(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver]
) -> None:
    """50 concurrent lookups of an uncached domain: 1 TXT query and 1 GET (pmsr: 50)."""
    lab = await lab_factory(healthy_domain("a.test", policy_host=PolicyHostSpec(delay_ms=200)))
    resolver = make_resolver(lab)
    results = await asyncio.gather(*(resolver.lookup("a.test") for _ in range(50)))
    assert {r.status for r in results} == {LookupStatus.STS}
    assert gets(lab) == 1
    assert txt_queries(lab) == 1


async def test_repeated_failures_back_off(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """STS-3.3-j: after a failed GET no new GET for that id for 5 minutes; a new id may be
    fetched at once. Without a cache the answer is FAILED with its result type."""
    lab = await lab_factory(healthy_domain("a.test", policy_host=PolicyHostSpec(status=500)))
    resolver = make_resolver(lab)
    for _ in range(5):
        failed = await resolver.lookup("a.test")
        assert failed.status is LookupStatus.FAILED
        assert failed.result_type is ResultType.STS_POLICY_FETCH_ERROR
        assert failed.policy_type == "sts"
        clock.advance(50)
    assert gets(lab) == 1
    clock.advance(60)  # 310 s after the failure
    await resolver.lookup("a.test")
    assert gets(lab) == 2
    clock.advance(30)
    lab.set_txt("_mta-sts.a.test", ["v=STSv1; id=2"])
    clock.advance(TTL)  # the failed answer is re-checked at the latest when the TTL ends
    await resolver.lookup("a.test")
    assert gets(lab) == 3


async def test_negative_answers_are_cached_for_the_dns_ttl(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """Repeated lookups of a domain without MTA-STS: one TXT query per TTL (pmsr: one each)."""
    lab = await lab_factory(Scenario(dns=(DnsSpec(name="a.test", a=("192.0.2.1",)),)))
    resolver = make_resolver(lab)
    for _ in range(20):
        result = await resolver.lookup("a.test")
        assert result.status is LookupStatus.NO_POLICY
    assert txt_queries(lab) == 1
    clock.advance(301)  # no SOA in the lab's answer: the default negative TTL, 300 s
    await resolver.lookup("a.test")
    assert txt_queries(lab) == 2


async def test_proactive_refresh_refetches_domains_in_use(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """STS-3.3-o: a policy in use is refetched about daily, before it expires."""
    lab = await lab_factory(healthy_domain("a.test", max_age=604800))
    resolver = make_resolver(lab)
    await resolver.lookup("a.test")
    clock.advance(3600)
    assert await resolver.refresh_due() == 1  # TXT re-check only (TTL passed)
    assert gets(lab) == 1
    clock.advance(86400)
    assert await resolver.refresh_due() == 1
    assert gets(lab) == 2
    assert await resolver.refresh_due() == 0


async def test_proactive_refresh_only_tracks_domains_with_a_policy(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """Domains without MTA-STS are not kept for proactive refresh: an MTA that sends to
    millions of such domains must not remember (and re-read) every one of them."""
    lab = await lab_factory(
        healthy_domain("a.test", max_age=604800)
        + Scenario(dns=tuple(DnsSpec(name=f"n{i}.test", a=("192.0.2.1",)) for i in range(5)))
    )
    resolver = make_resolver(lab)
    await resolver.lookup("a.test")
    for i in range(5):
        assert (await resolver.lookup(f"n{i}.test")).status is LookupStatus.NO_POLICY
    assert set(resolver._in_use) == {"a.test"}
    clock.advance(3600)
    assert await resolver.refresh_due() == 1  # only a.test is re-checked


async def test_cold_wait_answers_undetermined_and_caches_later(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver]
) -> None:
    """With cold_wait, a cold lookup stops waiting; the fetch goes on and is cached."""
    lab = await lab_factory(healthy_domain("a.test", policy_host=PolicyHostSpec(delay_ms=500)))
    resolver = make_resolver(lab, cold_wait=0.05)
    pending = await resolver.lookup("a.test")
    assert pending.status is LookupStatus.UNDETERMINED
    assert pending.cause is not None
    assert pending.cause.code == "lookup.pending"
    final = await resolver.refresh("a.test")  # joins the fetch already in flight
    assert final.status is LookupStatus.STS
    assert (await resolver.lookup("a.test")).source is Source.CACHE
    assert gets(lab) == 1


async def test_sqlite_cache_is_shared_across_resolvers(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], tmp_path: Path
) -> None:
    """A restarted resolver with a persistent cache answers without a new fetch."""
    lab = await lab_factory(healthy_domain("a.test"))
    url = f"sqlite:///{tmp_path}/cache.db"
    first = make_resolver(lab, await open_cache(url))
    await first.lookup("a.test")
    await first.aclose()
    second = make_resolver(lab, await open_cache(url))
    again = await second.lookup("A.TEST.")
    assert again.source is Source.CACHE
    assert again.domain == "a.test"
    assert gets(lab) == 1


async def test_a_failing_cache_backend_does_not_fail_lookups(
    lab_factory: LabFactory,
    make_resolver: Callable[..., Resolver],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A cache that cannot be written (here: another process holds the SQLite write lock)
    costs a warning, not the lookup; what could not be stored is kept in memory, so the
    next lookup neither refetches nor forgets a back-off."""
    lab = await lab_factory(healthy_domain("a.test"))
    path = tmp_path / "cache.db"
    resolver = make_resolver(lab, await open_cache(f"sqlite:///{path}"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # e.g. an administrator's sqlite3 shell, mid-edit
    try:
        with caplog.at_level("WARNING", logger="mtasts.sts.resolver"):
            first = await resolver.lookup("a.test")
            second = await resolver.lookup("a.test")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (first.status, first.source) == (LookupStatus.STS, Source.FETCHED)
    assert (second.status, second.source) == (LookupStatus.STS, Source.CACHE)
    assert gets(lab) == 1
    warned = [r for r in caplog.records if "policy cache" in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in warned]


async def test_proactive_refresh_keeps_at_most_concurrency_tasks(
    lab_factory: LabFactory, make_resolver: Callable[..., Resolver], clock: FakeClock
) -> None:
    """A refresh pass over many due domains runs them `concurrency` at a time, and never
    has more re-check tasks alive than that (not one waiting task per domain)."""
    names = [f"d{i}.test" for i in range(12)]
    lab = await lab_factory(
        Scenario(domains=tuple(healthy_domain(n, max_age=604800).domains[0] for n in names))
    )
    resolver = make_resolver(lab, concurrency=3)
    await asyncio.gather(*(resolver.lookup(n) for n in names))
    clock.advance(86400 + 3600)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            alive = [t for t in asyncio.all_tasks() if t.get_name().startswith("mta-sts ")]
            peak = max(peak, len(alive))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    try:
        assert await resolver.refresh_due() == len(names)
    finally:
        watcher.cancel()
    assert sum(gets(lab, n) for n in names) == 2 * len(names)
    assert 1 <= peak <= 3


async def test_a_harmless_deviation_keeps_the_policy_with_a_warning(
    lab_factory: LabFactory,
    make_resolver: Callable[..., Resolver],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Issue 16, fail safe: trailing blank lines and an IP-like mx value leave the enforce
    policy in force (not "failed", which would mean opportunistic TLS); each deviation is
    a warning in the lookup and in the debug log, and survives the persistent cache."""
    extra = "mx: 192.0.2.1\r\n\r\n\r\n"
    lab = await lab_factory(healthy_domain("a.test", policy_host=PolicyHostSpec(body_extra=extra)))
    url = f"sqlite:///{tmp_path}/cache.db"
    resolver = make_resolver(lab, await open_cache(url))
    with caplog.at_level(logging.DEBUG, logger="mtasts.sts.resolver"):
        result = await resolver.lookup("a.test")
    assert result.status is LookupStatus.STS
    assert result.mode is Mode.ENFORCE
    assert result.policy is not None
    assert result.policy.matches_mx("mx1.a.test")
    assert not result.policy.matches_mx("192.0.2.1")
    codes = ["policy.mx.numeric", "policy.blank-line", "policy.blank-line"]
    assert [w["code"] for w in result.to_json()["warnings"]] == codes
    assert result.to_json()["unmatchable_mx"] == ["192.0.2.1"]
    logged = [r for r in caplog.records if r.levelno == logging.DEBUG and "a.test" in r.message]
    assert [c for c in codes if any(c in r.getMessage() for r in logged)] == codes
    await resolver.aclose()
    again = await make_resolver(lab, await open_cache(url)).lookup("a.test")
    assert (again.source, again.status) == (Source.CACHE, LookupStatus.STS)
    assert again.to_json()["warnings"] == result.to_json()["warnings"]
    assert gets(lab) == 1
