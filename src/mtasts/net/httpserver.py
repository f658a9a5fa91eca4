"""The HTTP/1.1 foundation of our small servers: one request read with h11, bounded.

The policy host (``mtasts.publish.server``), the daemon's admin endpoint
(``mtasts.postfix.admin``) and the lab's HTTPS hosts read requests here instead of by
hand. h11 refuses what a hand parser lets through: a duplicate Host header or an
HTTP/1.1 request without one (RFC 9112 §3.2: 400), whitespace before a colon (RFC 9112
§5.1: 400), a malformed request line. On top of h11 this module bounds the head's size
however it arrives (431, RFC 6585 §5), refuses HTTP versions other than 1.0 and 1.1
(505, RFC 9110 §15.6.6), optionally bounds the time the head may take, and reads a
body up to a cap (Content-Length or chunked, h11 decodes both).

Every server here answers one request per connection and closes it: whatever a client
pipelines after its first request is never read as a request.

I/O module (the head is read through the caller's ``recv``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

import h11

MAX_HEAD_BYTES = 8192  # request line + headers
HTTP_VERSIONS = (b"1.0", b"1.1")
RECV_BYTES = 16384
LINGER_SECONDS = 1.0  # reading what a client still sends after our answer, at most
LINGER_BYTES = 65536

Recv = Callable[[], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A request line and header fields h11 accepted (names in lower case)."""

    method: str
    target: str
    http_version: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        """The first value of the field ``name`` (any case), None when absent."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)

    @property
    def host(self) -> str | None:
        return self.header("host")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why no request can be served: the status to answer with and a line of text.

    ``no_request``: the client closed its side before sending anything (a port scanner,
    a health check); the status is 400 should the server answer at all."""

    status: int
    text: str
    no_request: bool = False

    @property
    def reason(self) -> str:
        return reason(self.status)


def reason(status: int) -> str:
    """The reason phrase of ``status`` (RFC 9110 §15), ``""`` for one it does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class RequestReader:
    """Reads one request from ``recv`` (a coroutine returning the next bytes, ``b""`` at
    the end): :meth:`head` first, then, if wanted, :meth:`body`."""

    def __init__(self, recv: Recv, *, max_head: int = MAX_HEAD_BYTES) -> None:
        self._recv = recv
        self._max_head = max_head
        self._parser = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)

    async def head(self, seconds: float | None = None) -> RequestHead | Refusal:
        """The request head, or the Refusal to answer; TimeoutError after ``seconds``."""
        async with asyncio.timeout(seconds):
            return await self._head()

    async def _head(self) -> RequestHead | Refusal:
        parser = self._parser
        received = 0
        try:
            while (event := parser.next_event()) is h11.NEED_DATA:
                data = await self._recv()
                received += len(data)
                parser.receive_data(data)
            # h11 checks its bound only while a head is incomplete; one read can bring more
            if received - len(parser.trailing_data[0]) > self._max_head:
                raise h11.RemoteProtocolError(
                    f"the request head is above {self._max_head} bytes", error_status_hint=431
                )
        except h11.RemoteProtocolError as exc:
            # h11 refuses, among others, a duplicate Host header and an HTTP/1.1 request
            # without one (RFC 9112 §3.2: 400), and a head above the bound (431).
            status = 431 if exc.error_status_hint == 431 else 400
            return Refusal(status, f"{exc}\n")
        if not isinstance(event, h11.Request):
            return Refusal(400, "no request was sent\n", no_request=True)
        if event.http_version not in HTTP_VERSIONS:
            # RFC 9112 §2.3 lets a server process HTTP/1.x (x > 1) as 1.1; no such version
            # exists and no client of ours sends one, so we refuse it like any unknown
            # version, with 505 (RFC 9110 §15.6.6).
            version = event.http_version.decode("ascii", "replace")
            return Refusal(505, f"HTTP/{version}: only HTTP/1.0 and 1.1\n")
        return RequestHead(
            method=event.method.decode("ascii", "replace"),
            target=event.target.decode("latin-1"),
            http_version=event.http_version.decode("ascii"),
            headers=tuple(
                (name.decode("latin-1"), value.decode("latin-1")) for name, value in event.headers
            ),
        )

    async def body(self, max_bytes: int) -> bytes:
        """The request body after :meth:`head` (Content-Length or chunked), at most
        ``max_bytes``; ConnectionError when it is larger, malformed or cut short."""
        parser = self._parser
        out = bytearray()
        try:
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    parser.receive_data(await self._recv())
                elif isinstance(event, h11.Data):
                    out += event.data
                    if len(out) > max_bytes:
                        raise ConnectionError(f"the request body is above {max_bytes} bytes")
                elif isinstance(event, h11.EndOfMessage):
                    return bytes(out)
                else:  # ConnectionClosed before the end of the body
                    raise ConnectionError("the client closed the connection mid-body")
        except h11.RemoteProtocolError as exc:
            raise ConnectionError(f"malformed request body: {exc}") from exc


def stream_recv(reader: asyncio.StreamReader) -> Recv:
    """``recv`` over an asyncio stream."""

    async def recv() -> bytes:
        return await reader.read(RECV_BYTES)

    return recv


def response_bytes(status: int, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
    """An HTTP/1.1 response that closes the connection (Content-Length from ``body``)."""
    lines = [f"HTTP/1.1 {status} {reason(status)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def finish_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """After our answer: end our side, read (and drop) what the client still sends for a
    moment, then close. Closing with unread data would reset the connection and could
    destroy the answer before the client reads it."""
    with contextlib.suppress(OSError, RuntimeError):
        if writer.can_write_eof():
            writer.write_eof()
    received = 0
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(LINGER_SECONDS):
            while received < LINGER_BYTES:
                data = await reader.read(RECV_BYTES)
                if not data:
                    break
                received += len(data)
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        async with asyncio.timeout(LINGER_SECONDS):
            await writer.wait_closed()
