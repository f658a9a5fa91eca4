"""uvicorn, run inside the service's event loop, with a deadline for the request head.

uvicorn bounds the head's size (h11) and the connections (``limit_concurrency``: 503
past it), but any byte received cancels its keep-alive timer, so a client dripping a
header a byte at a time would hold a connection for ever (slowloris). The protocol below
arms a ``header_timeout`` when a connection opens and after each response, disarms it
when a whole request head has arrived, and closes the connection when it fires.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from mtasts.errors import listen_failed
from mtasts.tlsrpt.receive.netconfig import Listen, NetConfig

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024  # bytes of request line + headers (a report POST needs < 1 KiB)


class _DeadlineProtocol(H11Protocol):
    header_timeout: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:
            self._disarm()

    def on_response_complete(self) -> None:
        before = self.cycle
        super().on_response_complete()
        if self.cycle is before and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def bind(listen: Listen, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket for ``listen`` (port 0: any free port)."""
    if listen.path:
        raise ValueError("the https intake listens on TCP only")
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    try:
        sock = socket.create_server(
            (listen.host, listen.port), family=family, backlog=backlog, reuse_port=False
        )
    except OSError as exc:
        raise listen_failed(str(listen), exc) from exc
    sock.setblocking(False)
    return sock


class HttpServer:
    """uvicorn serving ``app`` on one socket, started and stopped by the service."""

    def __init__(self, app: Any, config: NetConfig, sock: socket.socket) -> None:
        protocol = type(
            "ReceiveHttpProtocol", (_DeadlineProtocol,), {"header_timeout": config.header_timeout}
        )
        self.sock = sock
        self.config = uvicorn.Config(
            app,
            http=protocol,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=bool(config.trusted_proxies),
            forwarded_allow_ips=list(config.trusted_proxies) or None,
            h11_max_incomplete_event_size=MAX_HEAD,
            limit_concurrency=config.max_connections,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=10,
            ssl_certfile=config.cert or None,
            ssl_keyfile=config.key or None,
        )
        self.server = uvicorn.Server(self.config)
        self.handshake_timeout = config.header_timeout
        self._main: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    async def start(self) -> None:
        config, server = self.config, self.server
        config.load()
        # uvicorn's Server.startup() for one socket, less its signal handling and with a
        # TLS handshake deadline: asyncio's default is 60 s, and a client that connects
        # and never says hello would hold a connection slot that long (the head deadline
        # starts only once TLS is up).
        server.lifespan = config.lifespan_class(config)
        await server.lifespan.startup()

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=server.server_state, app_state=server.lifespan.state
            )

        loop = asyncio.get_running_loop()
        server.servers = [
            await loop.create_server(
                protocol,
                sock=self.sock,
                ssl=config.ssl,
                backlog=config.backlog,
                ssl_handshake_timeout=self.handshake_timeout if config.ssl else None,
            )
        ]
        server.started = True
        self._main = asyncio.create_task(server.main_loop())

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._main is not None:
            await self._main
        if self.server.started:
            await self.server.shutdown(sockets=[self.sock])
