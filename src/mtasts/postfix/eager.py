"""Await a coroutine that usually completes without suspending, paying for a timeout only
when it does suspend (the daemon's cached-lookup path)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


async def eager(awaitable: Awaitable[T], limit: float) -> T:
    """Run ``awaitable`` to its first suspension now; only then start a timeout.

    Must be awaited from a task (it is: the connection's worker), so code inside that
    looks for the current task before suspending still finds one.
    """
    coro = cast(Coroutine[Any, Any, T], awaitable)
    try:
        first = coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    async with asyncio.timeout(limit):
        return await _Resume(coro, first)


class _Resume(Generic[T]):
    """Awaitable that continues a coroutine which already yielded ``first`` to the loop."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, T], first: Any) -> None:
        self.coro, self.first = coro, first

    def __await__(self) -> Generator[Any, Any, T]:
        value = self.first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                self.coro.close()
                raise
            except BaseException as exc:  # cancellation and timeouts go into the coroutine
                try:
                    value = self.coro.throw(exc)
                except StopIteration as done:
                    return cast(T, done.value)
            else:
                try:
                    value = self.coro.send(sent)
                except StopIteration as done:
                    return cast(T, done.value)
