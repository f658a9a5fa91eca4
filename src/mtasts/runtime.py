"""How a long-running mtasts service runs: its event loop and the signals that stop it.

One place for what every service (the daemon, ``tlsrpt collect|send|receive``, ``serve
policy``, ``web``, ``alerts``, ``monitor``) does the same way::

    async def main() -> None:
        with stop_event() as stop:   # set by SIGTERM (systemd stop) or SIGINT (Ctrl-C)
            ...
            await stop.wait()

    run(main(), uvloop=True)         # uvloop when asked and installed, else asyncio's loop
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("mtasts.runtime")

#: what stops a service: systemd's stop (SIGTERM) and Ctrl-C (SIGINT)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def run(main: Coroutine[Any, Any, T], *, uvloop: bool = False) -> T:
    """Run ``main`` to its end on a new event loop: uvloop's with ``uvloop`` when it is
    installed (the ``[uvloop]`` extra: less work per socket wake-up), else asyncio's."""
    if uvloop:
        try:
            import uvloop as fast
        except ImportError:
            log.info("uvloop not installed; using asyncio's loop")
        else:
            return fast.run(main)
    return asyncio.run(main)


@contextlib.contextmanager
def on_signals(
    callback: Callable[[], object],
    signals: Iterable[int] = STOP_SIGNALS,
    *,
    where_possible: bool = False,
) -> Iterator[None]:
    """Call ``callback`` in the running loop when one of ``signals`` (default SIGTERM or
    SIGINT) arrives, while the block runs. ``where_possible``: go on without when
    signals cannot be handled here (a loop outside the main thread), instead of raising."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in signals:
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError, ValueError):
            if not where_possible:
                raise
        else:
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def on_stop_signals(
    callback: Callable[[], object], *, where_possible: bool = False
) -> contextlib.AbstractContextManager[None]:
    """:func:`on_signals` for SIGTERM and SIGINT."""
    return on_signals(callback, STOP_SIGNALS, where_possible=where_possible)


@contextlib.contextmanager
def stop_event(*, where_possible: bool = False) -> Iterator[asyncio.Event]:
    """An event that SIGTERM or SIGINT sets while the block runs."""
    stop = asyncio.Event()
    with on_stop_signals(stop.set, where_possible=where_possible):
        yield stop
