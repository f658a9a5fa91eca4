"""The socketmap daemon: asyncio listeners that answer Postfix's TLS policy lookups.

One Postfix smtp(8) process keeps one connection open and sends one request at a time
(dict_sockmap.c: connect/read/write timeout 100 s, idle close after 10 s, reconnect after
100 s). A connection may still pipeline; replies always go back in request order.

Hot path: a request whose answer was rendered less than ``answer_ttl`` seconds ago is
answered inside ``data_received`` without creating a task. Anything else is queued to one
worker task per connection, which keeps the order. What the answer is, and how long it is
kept, is :mod:`mtasts.postfix.answers`; this module is the listeners and connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections import deque
from typing import cast

from mtasts.clock import Clock, monotonic
from mtasts.postfix.answers import (
    Answers,
    DaneProbe,
    FailureSink,
    PolicySource,
    ServerSettings,
)
from mtasts.postfix.metrics import Metrics
from mtasts.postfix.netstring import NetstringDecoder, NetstringError
from mtasts.postfix.sockets import (
    Acceptor,
    connection_cap,
    raise_open_files_limit,
    sd_notify,
)
from mtasts.postfix.stats import ServerStats

log = logging.getLogger("mtasts.daemon")

_DEFAULT_SETTINGS = ServerSettings()


class SocketmapServer(Answers):
    """Answers socketmap requests from a :class:`PolicySource`; owns its listeners."""

    def __init__(
        self,
        source: PolicySource,
        settings: ServerSettings = _DEFAULT_SETTINGS,
        *,
        dane: DaneProbe | None = None,
        metrics: Metrics | None = None,
        failures: FailureSink | None = None,
        clock: Clock = monotonic,
    ) -> None:
        super().__init__(
            source, settings, dane=dane, metrics=metrics, failures=failures, clock=clock
        )
        self._acceptor = Acceptor(self._admit, self._make_room, lambda: len(self._connections))
        #: open connections, oldest first (a dict keeps insertion order)
        self._connections: dict[_Connection, None] = {}
        self.max_connections = connection_cap(settings.max_connections)
        self._opening = 0  # accepted sockets not yet connected to a protocol
        self._connecting: set[asyncio.Task[None]] = set()
        self.serials = itertools.count(1)
        #: connections closed to make room (idle ones), and refused (none idle)
        self.evicted = 0
        self.refused = 0
        self._refused_logged = False
        self._closing = False
        # last: registering reads the counts above (the registry collects once to learn
        # the metric names)
        self.metrics.registry.register(ServerStats(self))

    # --- listeners ----------------------------------------------------------------------

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0 = any); return the bound address."""
        return await self._acceptor.listen_tcp(host, port)

    async def listen_unix(self, path: str, mode: int = 0o666) -> str:
        """Listen on a unix socket; ``mode`` must let Postfix's smtp(8) (user postfix) write."""
        return self._acceptor.listen_unix(path, mode)

    @property
    def fd_exhausted_total(self) -> int:
        """Accepts that failed for lack of file descriptors since the start."""
        return self._acceptor.exhausted_total

    def _make_room(self) -> bool:
        """Close the oldest idle connection (to free its descriptor); False if none is."""
        victim = self._oldest_idle()
        if victim is None:
            return False
        self.evicted += 1
        victim.close()
        return True

    def _admit(self, sock: socket.socket) -> None:
        """Hand an accepted socket to a protocol, making room under the connection cap."""
        if self._closing:
            sock.close()
            return
        full = len(self._connections) + self._opening >= self.max_connections
        if full and not self._make_room():
            self.refused += 1
            if not self._refused_logged:
                self._refused_logged = True
                log.warning(
                    "%d client connections, all busy (max_connections %d): refusing new "
                    "ones until one finishes",
                    len(self._connections),
                    self.max_connections,
                )
            sock.close()
            return
        self._refused_logged = False
        self._opening += 1
        task = asyncio.get_running_loop().create_task(self._connect(sock))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: _Connection(self), sock)
        except OSError as exc:
            sock.close()
            log.debug("could not set up an accepted connection: %s", exc)
        finally:
            self._opening -= 1

    def _oldest_idle(self) -> _Connection | None:
        """The connection open longest among those with no request in progress."""
        for conn in self._connections:
            if conn.idle.is_set() and not conn.closing:
                return conn
        return None

    def _connection_ended(self, conn: _Connection) -> None:
        self._connections.pop(conn, None)
        self._acceptor.resume()  # a listener waiting for a free descriptor may go on

    async def close(self) -> None:
        """Stop accepting, let requests in flight finish (``shutdown_grace``), close all."""
        self._closing = True
        self._acceptor.close()
        for task in list(self._connecting):
            task.cancel()
        await asyncio.gather(*self._connecting, return_exceptions=True)
        busy = [c.idle.wait() for c in self._connections if not c.idle.is_set()]
        if busy:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_grace):
                    await asyncio.gather(*busy)
        for conn in list(self._connections):
            conn.close()
        await asyncio.sleep(0)  # let the transports run connection_lost
        self._stop_flushing()


__all__ = ["SocketmapServer", "raise_open_files_limit", "sd_notify"]


class _Connection(asyncio.Protocol):
    """One client connection: decode, answer in order, enforce the idle timeout."""

    def __init__(self, server: SocketmapServer) -> None:
        self.server = server
        self.decoder = NetstringDecoder(server.settings.max_request)
        self.raw_answers = server.raw_answers
        self.metrics = server.metrics
        #: this connection's number (not id(): a closed connection's id is soon reused)
        self.serial = next(server.serials)
        self.transport: asyncio.Transport | None = None
        self.pending: deque[bytes] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.idle = asyncio.Event()
        self.idle.set()
        self.idle_handle: asyncio.TimerHandle | None = None
        self.served = 0
        self.served_at_check = 0
        self.paused = False
        self.can_write = asyncio.Event()
        self.can_write.set()
        #: set by close() and by a framing error (answer what came before, then close)
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self.server._connections[self] = None
        self.server.metrics.count_connection()
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connection_ended(self)
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        if self.worker is not None and not self.worker.done():
            self.worker.cancel()
        self.transport = None
        self.idle.set()

    def pause_writing(self) -> None:
        # Replies to reused answers are written inside data_received: a peer that sends
        # requests and never reads would make the write buffer grow without bound. Stop
        # reading until it has drained; the kernel's buffers then push back on the peer.
        self.can_write.clear()
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.can_write.set()
        if self.transport is not None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        # Hot path: one whole request that was answered less than answer_ttl ago, or
        # whose last answer still holds (the server's snapshot of it).
        if not self.pending and not self.decoder.buffered and self.transport is not None:
            wire = self.raw_answers.get(data)
            if wire is not None:
                self.transport.write(wire)
                self.served += 1
                self.metrics.fast_hits += 1
                return
            wire = self.server.snapshot(data)
            if wire is not None:
                self.transport.write(wire)
                self.served += 1
                return
        try:
            payloads: list[bytes] | tuple[bytes, ...] = self.decoder.feed(data)
        except NetstringError as exc:
            self.server.metrics.count_answer("bad-framing", 0.0)
            payloads = exc.complete
            log.warning(
                "closing a socketmap connection%s: %s",
                f" after answering {len(payloads)} request(s) before the bad bytes"
                if payloads
                else "",
                exc,
            )
            self.closing = True
            if self.transport is not None:
                self.transport.pause_reading()
            if not payloads:
                self.close()
                return
        if not payloads:
            return
        self.served += 1
        transport = self.transport
        for payload in payloads:
            if not self.pending and transport is not None:
                wire = self.server.answer_now(payload, self.serial)
                if wire is not None:
                    transport.write(wire)
                    continue
            self.pending.append(payload)
        if self.pending:
            if len(self.pending) > self.server.settings.max_pipeline:
                log.warning("closing connection: more than %d requests waiting", len(self.pending))
                self.close()
                return
            self.idle.clear()
            if self.worker is None or self.worker.done():
                self.worker = asyncio.get_running_loop().create_task(self._work())
        elif self.closing:
            self.close()

    async def _work(self) -> None:
        while self.pending:
            payload = self.pending[0]
            wire = await self.server.answer(payload, self.serial)
            self.pending.popleft()
            if self.transport is None:
                return
            await self.can_write.wait()
            self.transport.write(wire)
        self.served += 1
        self.idle.set()
        if self.closing:
            self.close()

    def _arm_idle(self) -> None:
        loop = asyncio.get_running_loop()
        self.idle_handle = loop.call_later(self.server.settings.idle_timeout, self._on_idle)

    def _on_idle(self) -> None:
        """Close after one to two ``idle_timeout`` periods without a request.

        Checked by a timer per period, not per request: it compares request counts.
        """
        if self.idle.is_set() and self.served == self.served_at_check:
            self.close()
        else:
            self.served_at_check = self.served
            self._arm_idle()

    def close(self) -> None:
        """Close (replies already written are still sent); the slot is free at once."""
        self.closing = True
        self.server._connections.pop(self, None)
        if self.transport is not None:
            self.transport.close()
