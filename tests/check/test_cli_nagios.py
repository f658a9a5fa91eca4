"""``mtasts check --nagios`` end to end in the lab: the status line with performance data,
the thresholds, and exit codes a monitoring system reads (issue 10)."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from tests.commands import MTASTS

from mtasts.lab import Lab, Scenario
from mtasts.lab.testing import LabPool, healthy_domain

pytestmark = pytest.mark.lab

LabFactory = Callable[[Scenario | str], Awaitable[Lab]]
# lab certificates are valid for centuries: only a huge threshold reaches them
HUGE = "10000000"


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with LabPool() as pool:
        yield await pool.start(healthy_domain("ok.test", max_age=1209600))


async def run(lab: Lab, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *MTASTS,
        "check",
        *args,
        env={**os.environ, **lab.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_status_line_and_thresholds(lab: Lab) -> None:
    code, out, err = await run(lab, "ok.test", "--nagios")
    assert code == 0, out + err
    assert re.fullmatch(
        r"MTA-STS OK - ok\.test OK, 1 MX, certificates valid \d+\+ days \| "
        r"'mta-sts\.ok\.test policy host cert days'=\d+;14:;0: "
        r"'mx1\.ok\.test mx cert days'=\d+;14:;0: 'ok\.test mx count'=1;;;0\n",
        out,
    ), out

    code, out, _ = await run(lab, "ok.test", "--nagios", "--warning-days", HUGE)
    assert code == 1
    first, *problems = out.splitlines()
    assert first.startswith(
        "MTA-STS WARNING - ok.test WARNING (policy-host.cert-expiry, mx.cert-expiry) | "
    )
    assert [p.split(":")[0] for p in problems] == [
        "WARNING ok.test policy-host.cert-expiry",
        "WARNING ok.test mx.cert-expiry",
    ]

    code, out, _ = await run(
        lab, "ok.test", "--nagios", "--warning-days", HUGE, "--critical-days", HUGE
    )
    assert code == 2
    assert out.startswith("MTA-STS CRITICAL - ok.test CRITICAL (")


async def test_thresholds_apply_to_json_and_bad_ones_are_unknown(lab: Lab) -> None:
    code, out, _ = await run(lab, "ok.test", "--json", "--warning-days", HUGE)
    assert code == 1
    assert '"mx.cert-expiry"' in out
    code, _, err = await run(lab, "ok.test", "--warning-days", "3", "--critical-days", "5")
    assert code == 3  # UNKNOWN: a monitoring configuration mistake must not page as CRITICAL
    assert "--critical-days 5 must be between 0 and --warning-days 3" in err
    code, _, err = await run(lab, "ok.test", "--nagios", "--json")
    assert code == 3
    assert "exclude each other" in err
