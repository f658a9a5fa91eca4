"""Small helpers for the ACME tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_for(
    condition: Callable[[], bool], timeout: float, explain: Callable[[], str] = str
) -> None:
    """Poll ``condition`` every 50 ms; fail with ``explain()`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s\n{explain()}")
        await asyncio.sleep(0.05)
