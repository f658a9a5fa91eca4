"""The socketmap daemon: asyncio listeners that answer Postfix's TLS policy lookups.

One Postfix smtp(8) process keeps one connection open and sends one request at a time
(dict_sockmap.c: connect/read/write timeout 100 s, idle close after 10 s, reconnect after
100 s). A connection may still pipeline; replies always go back in request order.

Hot path: a request whose answer was rendered less than ``answer_ttl`` seconds ago is
answered inside ``data_received`` without creating a task. Anything else is queued to one
worker task per connection, which keeps the order.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, cast

from mtasts.postfix.metrics import Metrics
from mtasts.postfix.netstring import (
    DEFAULT_MAX_REQUEST,
    NetstringDecoder,
    NetstringError,
    encode,
)
from mtasts.postfix.socketmap import (
    NOTFOUND,
    LookupLike,
    Reply,
    ReplyOptions,
    Request,
    SocketmapError,
    Status,
    parse_request,
    policy_domain_for_key,
    render,
)

log = logging.getLogger("mtasts.daemon")


class PolicySource(Protocol):
    """Anything with the resolver's ``lookup``: :class:`mtasts.sts.resolver.Resolver`."""

    async def lookup(self, domain: str) -> LookupLike: ...


#: ``async (domain, lookup) -> bool``: do the MX hosts of an enforce domain publish
#: DNSSEC-validated TLSA records? (see :mod:`mtasts.postfix.dane`)
DaneProbe = Callable[[str, LookupLike], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Daemon behaviour; every field has a ``mtasts daemon`` option."""

    zones: Mapping[str, ReplyOptions] = field(default_factory=dict)
    default_zone: ReplyOptions = field(default_factory=ReplyOptions)
    max_request: int = DEFAULT_MAX_REQUEST
    #: above the resolver's whole-fetch limit (60 s) so a slow policy host ends as a
    #: failed fetch (deliver, RFC 8461 §3.3), below Postfix's fixed 100 s
    lookup_timeout: float = 75.0
    #: close a connection idle this long (Postfix closes its own after 10 s)
    idle_timeout: float = 300.0
    #: reuse a rendered answer this long (seconds; 0 = never)
    answer_ttl: float = 1.0
    #: requests waiting on one connection before it is dropped as abusive
    max_pipeline: int = 128
    shutdown_grace: float = 10.0


class SocketmapServer:
    """Answers socketmap requests from a :class:`PolicySource`; owns its listeners."""

    def __init__(
        self,
        source: PolicySource,
        settings: ServerSettings = ServerSettings(),
        *,
        dane: DaneProbe | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.dane = dane
        self.metrics = metrics or Metrics()
        self._answers: dict[tuple[str, str], tuple[float, bytes]] = {}
        #: the same answers keyed by the request's exact bytes on the wire (hot path);
        #: emptied as a whole every ``answer_ttl`` seconds, so a hit needs no clock
        self.raw_answers: dict[bytes, bytes] = {}
        self._raw_flush: asyncio.TimerHandle | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[_Connection] = set()
        self._unix_paths: list[tuple[str, int, int]] = []

    # --- answering ----------------------------------------------------------------------

    def zone(self, name: str) -> ReplyOptions:
        """Reply options for a socketmap name; unknown names get the default zone."""
        return self.settings.zones.get(name, self.settings.default_zone)

    def cached_answer(self, payload: bytes) -> bytes | None:
        """The wire reply for ``payload`` if it can be given without awaiting anything."""
        try:
            request = parse_request(payload)
        except SocketmapError:
            return None
        return self._without_lookup(request)[1]

    def _without_lookup(self, request: Request) -> tuple[str | None, bytes | None]:
        """The request's Policy Domain, and its wire reply when no lookup is needed
        (a key that names no domain, or an answer rendered less than answer_ttl ago)."""
        domain = policy_domain_for_key(request.key)
        if domain is None:
            self.metrics.count_answer("notfound-key", 0.0)
            return None, _NOTFOUND_WIRE
        hit = self._answers.get((request.name, domain))
        if hit is not None and hit[0] > time.monotonic():
            self.metrics.count_answer("answer-cache", 0.0)
            return domain, hit[1]
        return domain, None

    async def answer(self, payload: bytes) -> bytes:
        """The wire reply for one request payload."""
        started = time.perf_counter()
        try:
            request = parse_request(payload)
        except SocketmapError as exc:
            self.metrics.count_answer("bad-request", 0.0)
            log.warning("bad socketmap request: %s", exc)
            return Reply(Status.PERM, "malformed socketmap request").encode()
        domain, quick = self._without_lookup(request)
        if quick is not None:
            return quick
        assert domain is not None
        options = self.zone(request.name)
        try:
            lookup, dane = await self._lookup(domain, options)
        except TimeoutError:
            self.metrics.count_answer("timeout", time.perf_counter() - started)
            log.warning(
                "lookup domain=%s timed out after %.0fs", domain, self.settings.lookup_timeout
            )
            return Reply(Status.TIMEOUT, "MTA-STS policy lookup timed out").encode()
        except Exception:  # a broken backend must defer mail, never downgrade it
            self.metrics.count_answer("error", time.perf_counter() - started)
            log.exception("lookup domain=%s failed", domain)
            return Reply(Status.TEMP, "MTA-STS policy lookup failed; see the daemon log").encode()
        self.metrics.count_lookup(
            str(getattr(lookup, "source", "cache")),
            _optional_str(getattr(lookup, "result_type", None)),
            _optional_str(getattr(lookup, "refresh_error", None)),
        )
        reply = render(lookup, options, dane=dane)
        wire = reply.encode()
        if self.settings.answer_ttl > 0 and reply.status in (Status.OK, Status.NOTFOUND):
            expires = time.monotonic() + self.settings.answer_ttl
            self._answers[(request.name, domain)] = (expires, wire)
            self.raw_answers[encode(payload)] = wire
            if self._raw_flush is None:
                self._raw_flush = asyncio.get_running_loop().call_later(
                    self.settings.answer_ttl, self._flush_raw
                )
            if len(self._answers) > 100_000:
                self._prune_answers()
        self.metrics.count_answer(str(reply.status).lower(), time.perf_counter() - started)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "lookup map=%s key=%s -> %s %s",
                request.name,
                request.key,
                reply.status,
                reply.data,
            )
        return wire

    async def _lookup(self, domain: str, options: ReplyOptions) -> tuple[LookupLike, bool]:
        """The lookup (and DANE verdict), bounded by ``lookup_timeout``.

        A cached answer completes without ever suspending; it is taken eagerly, so the
        common case pays for no timer. Only a lookup that has to wait runs under
        ``asyncio.timeout``.
        """
        lookup = await _eager(self.source.lookup(domain), self.settings.lookup_timeout)
        dane = False
        if self.dane is not None and _is_enforced(lookup, options):
            dane = await _eager(self.dane(domain, lookup), self.settings.lookup_timeout)
        return lookup, dane

    def forget(self, domain: str | None = None) -> None:
        """Drop rendered answers (all, or one domain's) so the next request asks the source."""
        if domain is None:
            self._answers.clear()
            self.raw_answers.clear()
        else:
            for k in [k for k in self._answers if k[1] == domain]:
                del self._answers[k]
            self.raw_answers.clear()  # lives at most answer_ttl anyway

    def _prune_answers(self) -> None:
        now = time.monotonic()
        for k in [k for k, (exp, _) in self._answers.items() if exp <= now]:
            del self._answers[k]

    def _flush_raw(self) -> None:
        self.raw_answers.clear()
        self._raw_flush = None

    # --- listeners ----------------------------------------------------------------------

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0 = any); return the bound address."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), host, port, reuse_address=True)
        self._servers.append(server)
        name = server.sockets[0].getsockname()
        log.info("listening on %s:%s", name[0], name[1])
        return str(name[0]), int(name[1])

    async def listen_unix(self, path: str, mode: int = 0o666) -> str:
        """Listen on a unix socket; ``mode`` must let Postfix's smtp(8) (user postfix) write."""
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(path).st_mode):
                if _unix_socket_answers(path):
                    raise OSError(
                        errno.EADDRINUSE,
                        f"unix socket {path} is in use by a running process "
                        "(another mtasts daemon?); stop it or choose another path",
                    )
                os.unlink(path)  # stale: left by a daemon that did not stop cleanly
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(lambda: _Connection(self), path)
        os.chmod(path, mode)
        st = os.stat(path)
        self._servers.append(server)
        self._unix_paths.append((path, st.st_dev, st.st_ino))
        log.info("listening on unix:%s mode %o", path, mode)
        return path

    async def close(self) -> None:
        """Stop accepting, let requests in flight finish (``shutdown_grace``), close all."""
        for server in self._servers:
            server.close()
        busy = [c.idle.wait() for c in self._connections if not c.idle.is_set()]
        if busy:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_grace):
                    await asyncio.gather(*busy)
        for conn in list(self._connections):
            conn.close()
        for server in self._servers:
            await server.wait_closed()
        if self._raw_flush is not None:
            self._raw_flush.cancel()
            self._raw_flush = None
        for path, dev, ino in self._unix_paths:
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):  # not a newer daemon's socket
                    os.unlink(path)
        self._unix_paths.clear()
        self._servers.clear()


_NOTFOUND_WIRE = NOTFOUND.encode()
T = TypeVar("T")


async def _eager(awaitable: Awaitable[T], limit: float) -> T:
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


def _unix_socket_answers(path: str) -> bool:
    """Whether a process accepts connections on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except ConnectionRefusedError:  # nobody listening: a stale file
            return False
        except OSError:  # a full backlog, no permission: leave it alone
            return True
    return True


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _is_enforced(lookup: LookupLike, options: ReplyOptions) -> bool:
    policy = lookup.policy
    if str(lookup.status) != "sts" or policy is None:
        return False
    mode = str(policy.mode)
    return mode == "enforce" or (mode == "testing" and options.strict_testing)


class _Connection(asyncio.Protocol):
    """One client connection: decode, answer in order, enforce the idle timeout."""

    def __init__(self, server: SocketmapServer) -> None:
        self.server = server
        self.decoder = NetstringDecoder(server.settings.max_request)
        self.raw_answers = server.raw_answers
        self.metrics = server.metrics
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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self.server._connections.add(self)
        self.server.metrics.count_connection()
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
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
        # Hot path: one whole request that was answered less than answer_ttl ago.
        if not self.pending and not self.decoder.buffered:
            wire = self.raw_answers.get(data)
            if wire is not None and self.transport is not None:
                self.transport.write(wire)
                self.served += 1
                self.metrics.fast_hits += 1
                return
        try:
            payloads = self.decoder.feed(data)
        except NetstringError as exc:
            self.server.metrics.count_answer("bad-framing", 0.0)
            log.warning("closing connection: %s", exc)
            self.close()
            return
        if not payloads:
            return
        self.served += 1
        transport = self.transport
        for payload in payloads:
            if not self.pending and transport is not None:
                wire = self.server.cached_answer(payload)
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

    async def _work(self) -> None:
        while self.pending:
            payload = self.pending[0]
            wire = await self.server.answer(payload)
            self.pending.popleft()
            if self.transport is None:
                return
            await self.can_write.wait()
            self.transport.write(wire)
        self.served += 1
        self.idle.set()

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
        if self.transport is not None:
            self.transport.close()


# --- systemd readiness (sd_notify(3) protocol, without libsystemd) ------------------------


def sd_notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to ``$NOTIFY_SOCKET``; False when not under systemd."""
    address = (environ if environ is not None else os.environ).get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", address, exc)
            return False
    return True
