"""The daemon's HTTP side door: Prometheus metrics and one domain's cache entry.

``GET /metrics``                 Prometheus text format
``GET /cache/DOMAIN``            the cached entry as JSON (404 when none)
``DELETE /cache/DOMAIN``         purge it (and the daemon's rendered answer)
``POST /cache/DOMAIN/refresh``   re-check DNS / re-fetch now; returns the lookup as JSON

It has no authentication: bind it to loopback (the default) or a unix-only host.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from mtasts.errors import DomainNameError, listen_failed
from mtasts.names import normalize_domain
from mtasts.net.httpserver import (
    Refusal,
    RequestReader,
    finish_stream,
    response_bytes,
    stream_recv,
)
from mtasts.postfix.server import SocketmapServer
from mtasts.sts.cache.base import entry_to_json
from mtasts.sts.resolver import Resolver

log = logging.getLogger("mtasts.daemon")
HEAD_SECONDS = 10.0  # a client gets this long to send its request head
# generate_latest() writes the 0.0.4 text format; prometheus-client >= 0.22 labels its
# CONTENT_TYPE_LATEST "version=1.0.0", which Prometheus 2 scrapers do not all accept
_METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Admin:
    def __init__(
        self,
        server: SocketmapServer,
        resolver: Resolver,
        forget: Callable[[str], None] | None = None,
    ) -> None:
        self.server = server
        self.resolver = resolver
        self.forget = forget
        self._listener: asyncio.AbstractServer | None = None

    async def listen(self, host: str, port: int) -> tuple[str, int]:
        try:
            self._listener = await asyncio.start_server(self._handle, host, port)
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise listen_failed(f"{where} (metrics)", exc) from exc
        name = self._listener.sockets[0].getsockname()
        log.debug("metrics and cache control on http://%s:%s/", name[0], name[1])
        return str(name[0]), int(name[1])

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            await self._listener.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await RequestReader(stream_recv(reader)).head(HEAD_SECONDS)
            if isinstance(head, Refusal):
                if head.no_request:
                    return
                # h11 refused the head: a malformed request line, a duplicate Host, a head
                # above the bound (431) or an HTTP version other than 1.0/1.1 (505).
                status, ctype, body = _json(head.status, {"error": head.text.strip()})
            else:
                status, ctype, body = await self._answer(head.method, head.target)
            writer.write(response_bytes(status, (("Content-Type", ctype),), body))
            await writer.drain()
            await finish_stream(reader, writer)
        except (OSError, TimeoutError):
            pass  # the client went away, or sent no complete head within HEAD_SECONDS
        finally:
            if not writer.is_closing():
                writer.transport.abort()

    async def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        try:
            return await self.route(method, path)
        except Exception as exc:  # a cache backend down: say so, do not drop the connection
            log.warning("admin %s %s failed: %s", method, path, exc)
            return _json(500, {"error": f"{type(exc).__name__}: {exc}"})

    async def route(self, method: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        if path == "/metrics":
            if method != "GET":
                return _json(405, {"error": "use GET"})
            return 200, _METRICS_TYPE, self.server.metrics.render()
        parts = path.strip("/").split("/")
        if len(parts) not in (2, 3) or parts[0] != "cache":
            return _json(404, {"error": "try /metrics or /cache/DOMAIN"})
        try:
            domain = normalize_domain(parts[1])
        except DomainNameError as exc:
            return _json(400, {"error": exc.message})
        action: dict[tuple[str, int], Callable[[str], Awaitable[tuple[int, str, bytes]]]] = {
            ("GET", 2): self.show,
            ("DELETE", 2): self.purge,
            ("POST", 3): self.refresh,
        }
        handler = action.get((method, len(parts)))
        if handler is None or (len(parts) == 3 and parts[2] != "refresh"):
            return _json(405, {"error": "GET or DELETE /cache/DOMAIN, POST /cache/DOMAIN/refresh"})
        return await handler(domain)

    async def show(self, domain: str) -> tuple[int, str, bytes]:
        entry = await self.resolver.cache.get(domain)
        if entry is None:
            return _json(404, {"domain": domain, "error": "not in the cache"})
        return _json(200, entry_to_json(entry))

    async def purge(self, domain: str) -> tuple[int, str, bytes]:
        await self.resolver.cache.delete(domain)
        self._forget(domain)
        return _json(200, {"domain": domain, "purged": True})

    async def refresh(self, domain: str) -> tuple[int, str, bytes]:
        lookup = await self.resolver.refresh(domain)
        self._forget(domain)
        return _json(200, lookup.to_json())

    def _forget(self, domain: str) -> None:
        self.server.forget(domain)
        if self.forget is not None:
            self.forget(domain)


def _json(status: int, data: Any) -> tuple[int, str, bytes]:
    return status, "application/json", orjson.dumps(data, option=orjson.OPT_INDENT_2)
