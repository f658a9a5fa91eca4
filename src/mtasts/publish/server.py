"""``mtasts serve policy``: a small asyncio HTTP/1.1 server for ``/.well-known/mta-sts.txt``.

It serves many Policy Domains by Host header, over HTTPS (``--cert/--key``) or plain HTTP
behind a TLS-terminating proxy (nginx, Caddy). What it answers is decided by the pure
``mtasts.publish.site.respond``; this module reads requests with
``mtasts.net.httpserver`` (h11, not by hand: duplicate Host headers, malformed heads and
oversized ones are refused), bounded in size, time, connections in all and per client,
and answers one request per connection.

I/O module.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mtasts.errors import ConfigError, DomainNameError
from mtasts.names import normalize_domain
from mtasts.net.httpserver import (
    LINGER_BYTES,
    LINGER_SECONDS,
    MAX_HEAD_BYTES,
    RECV_BYTES,
    Refusal,
    RequestReader,
)
from mtasts.net.tls import server_context
from mtasts.postfix.sockets import Acceptor, connection_cap
from mtasts.publish.limits import ClientLimits, ClientTable, client_key
from mtasts.publish.settings import DEFAULT_MAX_CONNECTIONS, READ_TIMEOUT
from mtasts.publish.site import CONTENT_TYPE, Response, Site, check_policy_file, render, respond
from mtasts.rfcnames import MAX_POLICY_BYTES, domain_of_policy_host

log = logging.getLogger("mtasts.serve")

SUMMARY_INTERVAL = 60.0  # refused and failed connections are logged as one line a minute


def _read_policy(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the policy file {path}: {exc.strerror}") from exc
    if len(data) > MAX_POLICY_BYTES:
        raise ConfigError(f"{path} is {len(data)} bytes; senders stop reading at 64 KB")
    check_policy_file(data, str(path))  # at start and on every reload
    return data


def _domain_key(name: str, source: object) -> str:
    """The Policy Domain as senders' Host headers spell it: A-labels, lower case."""
    domain = name.strip().lower().rstrip(".")
    if (bare := domain_of_policy_host(domain)) is not None:
        raise ConfigError(
            f"{source}: name the policy domain ({bare}), not the policy host ({domain})"
        )
    try:
        return normalize_domain(domain)
    except DomainNameError as exc:
        raise ConfigError(f"{source}: {exc.message}") from exc


def _add(policies: dict[str, bytes], domain: str, policy: bytes, source: object) -> None:
    if domain in policies:
        raise ConfigError(f"{source}: two policies for {domain}; keep one")
    policies[domain] = policy


def load_directory(directory: Path) -> Site:
    """Policies from ``DIR/<domain>.txt`` (e.g. ``DIR/example.com.txt``)."""
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    policies: dict[str, bytes] = {}
    for path in sorted(directory.glob("*.txt")):
        if path.is_file():
            key = _domain_key(path.name[: -len(".txt")], path)
            _add(policies, key, _read_policy(path), directory)
    if not policies:
        raise ConfigError(f"{directory} holds no <domain>.txt policy file")
    return Site(policies)


def load_config(path: Path) -> Site:
    """Policies from a TOML file: ``[policies]`` mapping domain -> policy file path.

    Relative paths are read relative to the config file.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    unknown = set(data) - {"policies"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; only [policies]")
    table = data.get("policies")
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(f'{path}: needs a [policies] table: "example.com" = "policy.txt"')
    for name, file in table.items():
        if not isinstance(file, str):
            raise ConfigError(f"{path}: the policy of {name} must be a file path")
    return load_policies({name: Path(file) for name, file in table.items()}, path)


def load_policies(table: Mapping[str, Path], source: Path) -> Site:
    """Policies from ``domain -> file`` (``[serve.policies]``); relative to ``source``'s
    directory."""
    if not table:
        raise ConfigError(f'{source}: no policies: "example.com" = "policy.txt"')
    policies: dict[str, bytes] = {}
    for name, file in table.items():
        _add(policies, _domain_key(name, source), _read_policy(source.parent / file), source)
    return Site(policies)


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context: TLS 1.2+ (RFC 8461 §7.2), the given certificate chain and key."""
    return server_context(cert, key)


# --- serving ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How much the server gives: connections in all, per client, and time per request.

    ``max_connections`` is lowered at start to fit the open-files limit. With no
    ``per_client`` limits (behind a proxy every connection comes from the proxy) only the
    overall cap applies. ``read_timeout`` None means :data:`READ_TIMEOUT`.
    """

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    per_client: ClientLimits | None = None
    read_timeout: float | None = None


def _error(status: int, reason: str, text: str) -> Response:
    body = text.encode("utf-8", "replace")
    headers = (
        ("Content-Type", CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    )
    return Response(status, reason, headers, body)


# A client that closes its side before sending a request (a port scanner, a health check).
_NO_REQUEST = _error(400, "Bad Request", "no request was sent\n")


#: RFC 8555 §8.3: where an ACME CA fetches an http-01 key authorization
ACME_CHALLENGE_PATH = "/.well-known/acme-challenge/"
#: token -> key authorization (``mtasts serve policy --acme`` with http-01), None: unknown
Http01Answers = Callable[[str], bytes | None]


def _acme_answer(answers: Http01Answers, method: str, target: str) -> Response:
    token = target[len(ACME_CHALLENGE_PATH) :]
    body = answers(token) if token and "/" not in token and method in ("GET", "HEAD") else None
    if body is None:
        return _error(404, "Not Found", "no such ACME challenge\n")
    headers = (("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body))))
    return Response(200, "OK", headers, b"" if method == "HEAD" else body)


async def _read_request(
    channel: _Channel, site: Site, acme: Http01Answers | None = None
) -> Response:
    """Read one request head (``net.httpserver``: h11, bounded by MAX_HEAD_BYTES) and
    answer it."""
    head = await RequestReader(channel.recv, max_head=MAX_HEAD_BYTES).head()
    if isinstance(head, Refusal):
        return _NO_REQUEST if head.no_request else _error(head.status, head.reason, head.text)
    if acme is not None and head.target.startswith(ACME_CHALLENGE_PATH):
        return _acme_answer(acme, head.method, head.target)
    return respond(site, head.method, head.target, head.host)


class _Channel:
    """A plain TCP connection, read and written with the loop's socket calls."""

    def __init__(self, sock: socket.socket, loop: asyncio.AbstractEventLoop) -> None:
        self.sock, self.loop = sock, loop

    async def start(self) -> None:
        """Whatever precedes the request (TLS: the handshake)."""

    async def recv(self) -> bytes:
        return await self.loop.sock_recv(self.sock, RECV_BYTES)

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def finish(self) -> None:
        """End our side, then read (and drop) what the client still sends for a moment:
        closing with unread data would reset the connection and could destroy the answer
        before the client reads it."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        received = 0
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(LINGER_SECONDS):
                while received < LINGER_BYTES:
                    data = await self.loop.sock_recv(self.sock, RECV_BYTES)
                    if not data:
                        break
                    received += len(data)


class _TlsChannel(_Channel):
    """TLS over memory BIOs on the same socket calls.

    Not asyncio's SSL transport: in Python 3.11 each failed handshake there leaves the
    protocol, its 256 KiB buffer and the exception in a reference cycle
    (CPython gh-109534) that only a full garbage collection frees, so a client sending
    bogus handshakes grew the server by ~80 KB each. Here nothing outlives the connection.
    """

    def __init__(
        self, sock: socket.socket, loop: asyncio.AbstractEventLoop, context: ssl.SSLContext
    ) -> None:
        super().__init__(sock, loop)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_side=True)
        # the ClientHello as received, for an SNI callback that must see its ALPN offer
        # (mtasts.acme: tls-alpn-01 validations get the validation certificate)
        self._tls.client_hello = b""  # type: ignore[attr-defined]
        self._handshaking = True

    async def _flush(self) -> None:
        data = self._out.read()
        if data:
            await self.loop.sock_sendall(self.sock, data)

    async def _fill(self) -> None:
        data = await self.loop.sock_recv(self.sock, RECV_BYTES)
        if data:
            hello: bytes = self._tls.client_hello  # type: ignore[attr-defined]
            if self._handshaking and len(hello) < MAX_HEAD_BYTES:
                self._tls.client_hello = hello + data  # type: ignore[attr-defined]
            self._in.write(data)
        else:
            self._in.write_eof()  # the next TLS call raises SSLEOFError (or returns b"")

    async def start(self) -> None:
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except ssl.SSLError:
                with contextlib.suppress(OSError):
                    await self._flush()  # the alert (e.g. unrecognized_name) reaches the client
                raise
        self._handshaking = False
        self._tls.client_hello = b""  # type: ignore[attr-defined]
        await self._flush()

    async def recv(self) -> bytes:
        while True:
            try:
                return self._tls.read(RECV_BYTES)
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""  # close_notify, or the TCP connection ended without one

    async def send(self, data: bytes) -> None:
        self._tls.write(data)
        await self._flush()

    async def finish(self) -> None:
        with contextlib.suppress(ssl.SSLError):
            self._tls.unwrap()  # queues our close_notify; the client's is not awaited
        with contextlib.suppress(OSError):
            await self._flush()
        await super().finish()


@dataclass(eq=False, slots=True)
class _Connection:
    client: str
    answering: bool = False
    evicted: bool = False


@dataclass
class PolicyServer:
    """Serves ``site``; ``reload()`` swaps in new policies without a restart.

    Connections are accepted by :class:`mtasts.postfix.sockets.Acceptor` (running out of
    file descriptors is logged once per episode, not once per accept), checked against
    the per-client limits and the connection cap (at the cap the oldest connection still
    waiting for its request is closed), and each request is read with h11.
    """

    site: Site
    tls: ssl.SSLContext | None = None
    limits: ServerLimits = field(default_factory=ServerLimits)
    #: answers ACME http-01 challenges under /.well-known/acme-challenge/ (any Host)
    acme_http: Http01Answers | None = None
    #: what happened since the start: served, bad-request, handshake-failed, timeout,
    #: refused (per-client limit), closed-at-cap
    counts: Counter[str] = field(default_factory=Counter)
    _acceptor: Acceptor | None = None
    _cap: int = 0
    _clients: ClientTable | None = None
    # Every connection being served, oldest first. close() ends them (and evicting one
    # at the cap cancels its task) so no handler or socket outlives the server.
    _tasks: dict[asyncio.Task[None], _Connection] = field(default_factory=dict)
    _counted: int = 0  # connections held against the cap (evicted ones no longer are)
    _window: Counter[str] = field(default_factory=Counter)
    _window_clients: Counter[str] = field(default_factory=Counter)
    _summary: asyncio.TimerHandle | None = None
    _window_started: float = 0.0

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free port)."""
        self._cap = connection_cap(self.limits.max_connections)
        if self.limits.per_client is not None:
            self._clients = ClientTable(self.limits.per_client)
        self._acceptor = Acceptor(self._admit, self._make_room, lambda: len(self._tasks))
        try:
            return await self._acceptor.listen_tcp(host, port)
        except BaseException:
            self._acceptor.close()
            self._acceptor = None
            raise

    def reload(self, site: Site) -> None:
        self.site = site

    @property
    def connection_cap(self) -> int:
        """The cap in force (``max_connections`` fitted to the open-files limit)."""
        return self._cap

    # --- admission ------------------------------------------------------------------

    def _admit(self, sock: socket.socket) -> None:
        try:
            peer = sock.getpeername()
            sock.setblocking(False)
        except OSError:  # reset before we got to it
            sock.close()
            return
        client = client_key(str(peer[0])) if isinstance(peer, tuple) else "local"
        if self._clients is not None:
            reason = self._clients.admit(client, asyncio.get_running_loop().time())
            if reason is not None:
                sock.close()
                self._note(
                    "refused", client, f"per-client limit reached, refusing connections: {reason}"
                )
                return
        if self._counted >= self._cap and not self._evict(f"connection cap of {self._cap}"):
            sock.close()  # every connection is busy answering: this one waits its turn
            if self._clients is not None:
                self._clients.release(client)
            self._note(
                "refused-at-cap",
                client,
                f"all {self._cap} connections are busy answering; refusing new ones",
            )
            return
        connection = _Connection(client)
        task = asyncio.get_running_loop().create_task(self._serve(sock, connection))
        self._tasks[task] = connection
        self._counted += 1
        task.add_done_callback(self._ended)

    def _make_room(self) -> bool:
        """Out of file descriptors (the Acceptor asks): close the oldest waiting connection."""
        return self._evict("out of file descriptors")

    def _evict(self, why: str) -> bool:
        """Close the oldest connection still waiting for its request; False if none is."""
        for task, connection in self._tasks.items():
            if not connection.answering and not connection.evicted:
                connection.evicted = True
                self._counted -= 1
                task.cancel()
                self._note(
                    "closed-at-cap",
                    connection.client,
                    f"{why}: closing the oldest connection still waiting for its request "
                    "(raise --max-connections and LimitNOFILE= if this is real traffic)",
                )
                return True
        return False

    def _ended(self, task: asyncio.Task[None]) -> None:
        connection = self._tasks.pop(task, None)
        if connection is not None and not connection.evicted:
            self._counted -= 1
        if self._acceptor is not None:
            self._acceptor.resume()  # a listener paused for lack of descriptors

    # --- one connection -------------------------------------------------------------

    async def _serve(self, sock: socket.socket, connection: _Connection) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.limits.read_timeout or READ_TIMEOUT
        channel = _Channel(sock, loop) if self.tls is None else _TlsChannel(sock, loop, self.tls)
        try:
            async with asyncio.timeout(timeout):
                try:
                    await channel.start()
                except (OSError, ssl.SSLError) as exc:
                    log.debug("TLS handshake with %s failed: %s", connection.client, exc)
                    self._note("handshake-failed", connection.client)
                    return
                response = await _read_request(channel, self.site, self.acme_http)
            connection.answering = True
            if response is _NO_REQUEST:
                self._note("no-request", connection.client)
            elif response.status in (400, 431, 505):
                self._note("bad-request", connection.client)
            else:
                self._note("served", connection.client)
            async with asyncio.timeout(timeout):
                await channel.send(render(response))
                await channel.finish()
        except TimeoutError:
            self._note("timeout", connection.client)
        except (OSError, ssl.SSLError):
            pass  # the client went away
        finally:
            sock.close()
            if self._clients is not None:
                self._clients.release(connection.client)

    # --- what happened, logged once a while ---------------------------------------------

    def _note(self, what: str, client: str, warning: str = "") -> None:
        """Count ``what``; the first of each kind in a minute with a ``warning`` is logged
        at once, and everything but served requests in one summary line a minute."""
        self.counts[what] += 1
        if what == "served":
            return
        if warning and what not in self._window:
            log.warning(
                "%s (client %s); a summary follows each minute while it lasts", warning, client
            )
        self._window[what] += 1
        if client in self._window_clients or len(self._window_clients) < 1000:
            self._window_clients[client] += 1
        if self._summary is None:
            loop = asyncio.get_running_loop()
            self._summary = loop.call_later(SUMMARY_INTERVAL, self._log_summary)
            self._window_started = loop.time()

    def _log_summary(self) -> None:
        self._summary = None
        if not self._window:
            return
        parts = ", ".join(f"{n} {what}" for what, n in sorted(self._window.items()))
        busiest = ", ".join(f"{c} ({n})" for c, n in self._window_clients.most_common(3))
        refused = any(k.startswith(("refused", "closed")) for k in self._window)
        log.log(
            logging.WARNING if refused else logging.INFO,
            "in the last %.0f s: %s; most from %s",
            asyncio.get_running_loop().time() - self._window_started,
            parts,
            busiest or "-",
        )
        self._window.clear()
        self._window_clients.clear()

    async def close(self) -> None:
        """Stop listening and end every open connection (a slow client included)."""
        if self._acceptor is not None:
            self._acceptor.close()
            self._acceptor = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=READ_TIMEOUT)
        if self._summary is not None:
            self._summary.cancel()
            self._log_summary()

    async def __aenter__(self) -> PolicyServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
