"""Loopback addresses for lab hosts, and bookkeeping of every listener and connection so
that stopping the lab closes all of them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import resource
from collections.abc import Awaitable, Callable

# Linux routes all of 127.0.0.0/8 to lo, so each lab host gets its own address without
# root. 127.0.0.1 (everything else on the machine) and 127.0.0.53 (systemd-resolved)
# are never handed out.
_RESERVED = {"127.0.0.1", "127.0.0.53", "127.0.1.1", "127.255.255.255"}

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def address_for(name: str, taken: set[str]) -> str:
    """A deterministic 127.x.y.z for ``name``, not in ``taken`` (which it is added to)."""
    digest = hashlib.sha256(name.encode()).digest()
    n = int.from_bytes(digest[:3], "big")
    while True:
        a, b, c = 16 + (n >> 16) % 224, (n >> 8) & 0xFF, 1 + (n & 0xFF) % 254
        address = f"127.{a}.{b}.{c}"
        if address not in taken and address not in _RESERVED:
            taken.add(address)
            return address
        n = (n + 1) % (1 << 24)


def raise_file_limit() -> int:
    """Raises this process's soft limit on open files to the hard limit; returns it.

    Every lab host listens on its own address, so a lab of N hosts holds N or more
    sockets: 10,000 policy hosts pass the usual soft limit of 1,024 long before the
    hard one (often 20,000 or more). Raising the soft limit needs no privilege.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Listeners:
    """Owns servers, datagram transports and live connections; ``close()`` ends them all."""

    def __init__(self) -> None:
        self.servers: list[asyncio.AbstractServer] = []
        self.transports: list[asyncio.BaseTransport] = []
        self.writers: set[asyncio.StreamWriter] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def add(self, *items: asyncio.AbstractServer | asyncio.BaseTransport) -> None:
        for item in items:
            if isinstance(item, asyncio.AbstractServer):
                self.servers.append(item)
            else:
                self.transports.append(item)

    def track(self, handler: Handler) -> Handler:
        """Wraps a stream handler so its connection is closed when the lab stops."""

        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.add(writer)
            task = asyncio.current_task()
            if task is not None:
                self.tasks.add(task)
            try:
                await handler(reader, writer)
            except (OSError, EOFError, asyncio.LimitOverrunError, ValueError):
                # A client that hangs up, breaks TLS or sends garbage ends only its own
                # connection (ssl.SSLError, TimeoutError and ConnectionError are OSErrors;
                # IncompleteReadError is an EOFError).
                pass
            except asyncio.CancelledError:
                # The lab is stopping. Ending normally (not "cancelled") keeps asyncio's
                # stream callback from logging the cancellation as an error.
                pass
            finally:
                self.writers.discard(writer)
                writer.close()
                if task is not None:
                    self.tasks.discard(task)

        return run

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for transport in self.transports:
            transport.close()
        for writer in list(self.writers):
            writer.transport.abort()
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for server in self.servers:
            await server.wait_closed()
        self.servers.clear()
        self.transports.clear()
