"""Small helpers for the ACME tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_for(
    condition: Callable[[], bool], seconds: float, explain: Callable[[], str] = str
) -> None:
    """Poll ``condition`` every 50 ms; fail with ``explain()`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {seconds} s\n{explain()}")
        await asyncio.sleep(0.05)
