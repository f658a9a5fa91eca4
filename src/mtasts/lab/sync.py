"""``LabThread``: the lab on an event loop in a background thread, for synchronous code
(the CLI, sync tests, benchmarks driving blocking clients)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from mtasts.lab.lab import Lab
from mtasts.lab.scenario import Scenario

T = TypeVar("T")


class LabThread:
    """``with LabThread(scenario) as lab:`` starts the lab and stops it on exit.

    The ``Lab`` it yields is the real one: its ``set_*`` methods and observation lists
    are plain data and safe to use from the calling thread.
    """

    def __init__(self, scenario: Scenario, **ports: int) -> None:
        self.scenario = scenario
        self.ports = ports
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="mtasts-lab", daemon=True)
        self.lab: Lab | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Runs a coroutine on the lab's loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> Lab:
        self.thread.start()
        try:
            self.lab = self.call(Lab.start(self.scenario, **self.ports))
        except BaseException:
            self._shutdown()
            raise
        return self.lab

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.lab is not None:
                self.call(self.lab.stop())
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if self.thread.is_alive():
            self.call(drain())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        self.loop.close()
