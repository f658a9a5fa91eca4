"""On-demand issuance for hosted domains: a certificate at the first handshake, only for
names the rule allows; one slow customer delays nobody."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from acme_helpers import wait_for

from mtasts.lab import Scenario
from mtasts.lab.scenario import DnsSpec

pytestmark = [pytest.mark.lab, pytest.mark.peer]

TARGET = "sts.provider.test"


def customers() -> Scenario:
    txt = (("v=STSv1; id=20260101",),)
    return Scenario(
        dns=(
            DnsSpec(TARGET, a=("127.0.0.1",)),
            # delegated to us and publishing MTA-STS: allowed
            DnsSpec("mta-sts.good.test", cname=TARGET),
            DnsSpec("_mta-sts.good.test", txt=txt),
            # points at our address but is no CNAME to us: refused
            DnsSpec("mta-sts.stranger.test", a=("127.0.0.1",)),
            DnsSpec("_mta-sts.stranger.test", txt=txt),
            # delegated, but no _mta-sts record: refused
            DnsSpec("mta-sts.notxt.test", cname=TARGET),
            # its DNS never answers: must not hold up good.test
            DnsSpec("mta-sts.slow.test", cname=TARGET),
            DnsSpec("_mta-sts.slow.test", fault="timeout"),
        )
    )


async def _first_handshake_fails(host, name: str) -> None:
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
        await host.fetch(name)


async def test_on_demand_issues_only_what_the_rule_allows(acme_host) -> None:
    domains = ("good.test", "stranger.test", "notxt.test", "slow.test")
    host = await acme_host(
        domains,
        scenario=customers(),
        on_demand=True,
        cname_target=TARGET,
        retry_min=30.0,
        retry_max=60.0,
        dns_timeout=60.0,  # slow.test's lookup hangs for the whole test
    )
    manager = host.manager
    await asyncio.sleep(0.3)
    assert manager.certs == {}  # on demand: nothing is ordered before a handshake asks
    # the first handshake fails fast (no waiting on DNS or the CA) and queues the name
    for domain in ("slow.test", "stranger.test", "notxt.test", "good.test"):
        await _first_handshake_fails(host, f"mta-sts.{domain}")
    await host.wait_issued("mta-sts.good.test")
    # good.test was served while slow.test's DNS lookup was still hanging
    assert manager.status["mta-sts.slow.test"].failures == 0
    _cert, response = await host.fetch("mta-sts.good.test")
    assert response.startswith(b"HTTP/1.1 200 OK")

    await wait_for(lambda: manager.status["mta-sts.stranger.test"].failures == 1, 10)
    await wait_for(lambda: manager.status["mta-sts.notxt.test"].failures == 1, 10)
    stranger = manager.status["mta-sts.stranger.test"].last_error
    assert f"not a CNAME to {TARGET}" in stranger
    assert "no v=STSv1 TXT record" in manager.status["mta-sts.notxt.test"].last_error
    # refused names never reached the CA: one order in all (good.test)
    assert host.sample("mtasts_acme_issuance_total", result="issued") == 1
    assert host.sample("mtasts_acme_issuance_total", result="precheck-failed") >= 2
    # and a refused name asking again inside its back-off costs nothing
    await _first_handshake_fails(host, "mta-sts.stranger.test")
    await asyncio.sleep(0.3)
    assert manager.status["mta-sts.stranger.test"].failures == 1


async def test_on_demand_ignores_names_not_served(acme_host) -> None:
    """A handshake for a name we hold no policy for queues nothing (no DNS, no CA)."""
    host = await acme_host(
        ("good.test",), scenario=customers(), on_demand=True, cname_target=TARGET
    )
    await _first_handshake_fails(host, "mta-sts.stranger.test")
    await _first_handshake_fails(host, "random.example")
    await asyncio.sleep(0.3)
    assert "mta-sts.stranger.test" not in host.manager.status
    assert host.sample("mtasts_acme_issuance_total", result="precheck-failed") == 0


async def test_issuance_budget_defers_names_beyond_it(acme_host) -> None:
    """max_issuance_per_hour = 1: the second name waits for the budget, not the CA."""
    scenario = customers() + Scenario(
        dns=(
            DnsSpec("mta-sts.good2.test", cname=TARGET),
            DnsSpec("_mta-sts.good2.test", txt=(("v=STSv1; id=1",),)),
        )
    )
    host = await acme_host(
        ("good.test", "good2.test"),
        scenario=scenario,
        on_demand=True,
        cname_target=TARGET,
        max_issuance_per_hour=1,
        pebble={"always_valid": True},
    )
    await _first_handshake_fails(host, "mta-sts.good.test")
    await _first_handshake_fails(host, "mta-sts.good2.test")
    await wait_for(
        lambda: host.sample("mtasts_acme_issuance_total", result="rate-limited") >= 1, 15
    )
    await wait_for(lambda: len(host.manager.certs) == 1, 15)
    deferred = next(
        n for n in ("mta-sts.good.test", "mta-sts.good2.test") if n not in host.manager.certs
    )
    assert host.manager.status[deferred].next_try > host.manager.clock() + 3000
