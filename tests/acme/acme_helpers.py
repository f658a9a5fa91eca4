"""Small helpers for the ACME tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mtasts.lab import Scenario
from mtasts.lab.scenario import DnsSpec


async def wait_for(
    condition: Callable[[], bool], seconds: float, explain: Callable[[], str] = str
) -> None:
    """Poll ``condition`` every 50 ms; fail with ``explain()`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds} s\n{explain()}")
        await asyncio.sleep(0.05)


def dns_for(
    domain: str, *, address: str = "127.0.0.1", txt: bool = True, cname: str = ""
) -> Scenario:
    """The records of a domain whose policy host is our server."""
    host = (
        DnsSpec(f"mta-sts.{domain}", cname=cname)
        if cname
        else DnsSpec(f"mta-sts.{domain}", a=(address,))
    )
    specs = [host]
    if txt:
        specs.append(DnsSpec(f"_mta-sts.{domain}", txt=(("v=STSv1; id=1",),)))
    return Scenario(dns=tuple(specs))
