"""Sockets of the socketmap daemon: listening with our own accept, the open-files limit,
systemd readiness. (The protocol side is :mod:`mtasts.postfix.server`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import socket
import stat
from collections.abc import Callable, Mapping

from mtasts.errors import listen_failed

log = logging.getLogger("mtasts.daemon")

LISTEN_BACKLOG = 511
ACCEPT_BATCH = 64  # connections accepted per wake-up of a listener
FD_RETRY_DELAY = 0.5  # seconds a listener waits when no idle connection can be closed
#: an exhaustion episode ends after this many seconds without a failed accept
FD_QUIET = 60.0
#: file descriptors kept free for what a lookup opens (DNS and HTTPS sockets, the cache,
#: the TLS-RPT store, the control endpoint) when the connection cap is fitted to the limit
FD_RESERVE = 128
FD_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def raise_open_files_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as the lab does); return (soft, hard).

    Needs no privilege. The usual soft limit of 1,024 is far below what a daemon holding
    one connection per Postfix smtp(8) process plus its own DNS and HTTPS sockets needs;
    the hard limit is what the administrator allowed (systemd ``LimitNOFILE=``).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def connection_cap(wanted: int) -> int:
    """``wanted`` client connections, lowered to leave :data:`FD_RESERVE` descriptors free
    under this process's open-files limit (at least 1)."""
    if wanted < 1:
        raise ValueError("max_connections must be at least 1")
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    fitted = max(1, min(wanted, soft - min(FD_RESERVE, soft // 4)))
    if fitted < wanted:
        log.warning(
            "max_connections lowered from %d to %d to fit the open-files limit of %d "
            "(raise LimitNOFILE= to allow more)",
            wanted,
            fitted,
            soft,
        )
    return fitted


class Listener:
    """One listening socket polled with ``loop.add_reader``; can pause for a while."""

    __slots__ = ("_accept", "_loop", "_timer", "paused", "sock")

    def __init__(
        self,
        sock: socket.socket,
        loop: asyncio.AbstractEventLoop,
        accept: Callable[[Listener], None],
    ) -> None:
        self.sock, self._loop, self._accept = sock, loop, accept
        self.paused = True
        self._timer: asyncio.TimerHandle | None = None

    def resume(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.paused and self.sock.fileno() >= 0:
            self.paused = False
            self._loop.add_reader(self.sock.fileno(), self._accept, self)

    def pause(self, seconds: float) -> None:
        if not self.paused:
            self.paused = True
            self._loop.remove_reader(self.sock.fileno())
        if self._timer is None:
            self._timer = self._loop.call_later(seconds, self.resume)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.paused and self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
        self.paused = True
        self.sock.close()


class Acceptor:
    """The daemon's listening sockets, accepted by us rather than by ``loop.create_server``.

    At the open-files limit asyncio's server logs a traceback per failed accept (thousands
    a second) and uvloop's drops the new connection without a word; here a failed accept
    asks ``make_room`` to close an idle connection, and when there is none the listener
    waits (no busy loop) until a connection ends. One warning per episode, one line when
    it is over, with the count.
    """

    def __init__(
        self,
        admit: Callable[[socket.socket], None],
        make_room: Callable[[], bool],
        connections: Callable[[], int],
    ) -> None:
        self._admit, self._make_room, self._connections = admit, make_room, connections
        self._listeners: list[Listener] = []
        self._unix_paths: list[tuple[str, int, int]] = []
        #: accepts that failed for lack of descriptors: this episode, and since the start
        self.exhausted = 0
        self.exhausted_total = 0
        self._last_exhausted = 0.0
        self._episode: asyncio.TimerHandle | None = None

    async def listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        """Listen on every address of ``host`` (port 0 = any); return the first bound.

        A failure is :func:`~mtasts.errors.listen_failed`'s error naming the address."""
        try:
            return await self._listen_tcp(host, port)
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise listen_failed(where, exc) from exc

    async def _listen_tcp(self, host: str, port: int) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        bound: tuple[str, int] | None = None
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address if bound is None else (address[0], bound[1], *address[2:]))
            except BaseException:
                sock.close()
                raise
            self._serve(sock)
            name = sock.getsockname()
            log.debug("listening on %s:%s", name[0], name[1])
            if bound is None:
                bound = (str(name[0]), int(name[1]))
        if bound is None:
            raise OSError(errno.EADDRNOTAVAIL, f"{host!r} resolves to no address")
        return bound

    def listen_unix(self, path: str, mode: int) -> str:
        """Listen on a unix socket at ``path``, replacing a stale socket file."""
        try:
            return self._listen_unix(path, mode)
        except OSError as exc:
            raise listen_failed(f"unix:{path}", exc) from exc

    def _listen_unix(self, path: str, mode: int) -> str:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.stat(path).st_mode):
                if unix_socket_answers(path):
                    raise OSError(
                        errno.EADDRINUSE,
                        f"unix socket {path} is in use by a running process "
                        "(another mtasts daemon?); stop it or choose another path",
                    )
                os.unlink(path)  # stale: left by a daemon that did not stop cleanly
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
        except BaseException:
            sock.close()
            raise
        self._serve(sock)
        os.chmod(path, mode)
        st = os.stat(path)
        self._unix_paths.append((path, st.st_dev, st.st_ino))
        log.debug("listening on unix:%s mode %o", path, mode)
        return path

    def _serve(self, sock: socket.socket) -> None:
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
        listener = Listener(sock, asyncio.get_running_loop(), self._accept)
        self._listeners.append(listener)
        listener.resume()

    def _accept(self, listener: Listener) -> None:
        """A listening socket is readable: accept what is queued (bounded per wake-up)."""
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in FD_EXHAUSTED:
                    self._exhausted(listener, exc)
                else:  # ECONNABORTED and the like: that client is gone, go on
                    log.debug("accept failed: %s", exc)
                return
            self._admit(sock)

    def _exhausted(self, listener: Listener, exc: OSError) -> None:
        """No descriptor for a new connection: free one, or wait until one is free."""
        self.exhausted += 1
        self.exhausted_total += 1
        loop = asyncio.get_running_loop()
        self._last_exhausted = loop.time()
        if self._episode is None:
            self._episode = loop.call_later(FD_QUIET, self._episode_check)
            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
            log.warning(
                "out of file descriptors (%s; open-files limit %d, %d client connections): "
                "closing idle connections to make room; raise LimitNOFILE= or lower "
                "max_connections",
                exc.strerror or exc,
                soft,
                self._connections(),
            )
        if not self._make_room():
            listener.pause(FD_RETRY_DELAY)

    def _episode_check(self) -> None:
        """One line when no accept has failed for FD_QUIET seconds: the episode is over."""
        loop = asyncio.get_running_loop()
        quiet_for = loop.time() - self._last_exhausted
        if quiet_for < FD_QUIET:
            self._episode = loop.call_later(FD_QUIET - quiet_for, self._episode_check)
            return
        log.warning(
            "file descriptors available again; %d accept(s) had failed for lack of them",
            self.exhausted,
        )
        self.exhausted = 0
        self._episode = None

    def resume(self) -> None:
        """Resume listeners paused for lack of descriptors (a connection just ended)."""
        for listener in self._listeners:
            if listener.paused:
                listener.resume()

    def close(self) -> None:
        """Stop accepting; remove our unix socket files (not a newer daemon's)."""
        if self._episode is not None:
            self._episode.cancel()
            self._episode = None
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
        for path, dev, ino in self._unix_paths:
            with contextlib.suppress(FileNotFoundError):
                st = os.stat(path)
                if (st.st_dev, st.st_ino) == (dev, ino):
                    os.unlink(path)
        self._unix_paths.clear()


def unix_socket_answers(path: str) -> bool:
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
