"""HTTPS in the lab: policy hosts that misbehave on purpose, and the TLS-RPT receiver.

A minimal HTTP/1.1 responder (one request per connection, ``Connection: close``): a
framework would not let a host send a wrong Content-Type, an endless body or a status
line after a delay, which is the point here. Requests are read as our own servers read
them (``mtasts.net.httpserver``, h11).
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from dataclasses import dataclass, replace
from typing import Any

from mtasts.lab.certs import sni_of
from mtasts.lab.scenario import PolicyHostSpec
from mtasts.net.httpserver import Refusal, RequestReader, response_bytes, stream_recv
from mtasts.net.httpserver import reason as http_reason
from mtasts.rfcnames import WELL_KNOWN_PATH

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_READ_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request a lab HTTPS server received (headers with lower-case names)."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    sni: str | None
    tls_version: str | None

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k == name), None)

    @property
    def host(self) -> str | None:
        return self.header("host")


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> HttpRequest:
    """One request, read with ``net.httpserver`` (h11: the head bounded in size and time,
    a Content-Length or chunked body up to ``_MAX_BODY``). A head h11 refuses is answered
    with its status and ends the connection (ConnectionError)."""
    requests = RequestReader(stream_recv(reader), max_head=_MAX_HEAD)
    head = await requests.head(_READ_TIMEOUT)
    if isinstance(head, Refusal):
        if not head.no_request:
            writer.write(response_bytes(head.status, (), head.text.encode()))
            await writer.drain()
        raise ConnectionError(f"bad request: {head.text.strip()}")
    async with asyncio.timeout(_READ_TIMEOUT):
        body = await requests.body(_MAX_BODY)
    ssl_object = writer.get_extra_info("ssl_object")
    version = ssl_object.version() if ssl_object is not None else None
    return HttpRequest(head.method, head.target, head.headers, body, sni_of(ssl_object), version)


def reason(status: int) -> str:
    return http_reason(status) or "Unknown"


def status_line(status: int) -> bytes:
    return f"HTTP/1.1 {status} {reason(status)}\r\n".encode()


def encode(body: bytes, content_encoding: str) -> bytes:
    """``body`` with each coding of a Content-Encoding value applied in the order listed
    (RFC 9110 §8.4); codings the lab does not know leave the body as it is."""
    for coding in (c.strip().lower() for c in content_encoding.split(",")):
        if coding in ("gzip", "x-gzip"):
            body = gzip.compress(body, mtime=0)
        elif coding == "deflate":  # RFC 9110 §8.4.1.2: the zlib format (RFC 1950)
            body = zlib.compress(body)
    return body


class PolicyHost:
    """``mta-sts.<domain>``: serves the policy byte for byte, or misbehaves per its spec."""

    def __init__(self, domain: str, policy: str | bytes | None, spec: PolicyHostSpec) -> None:
        self.domain = domain
        self.policy = policy
        self.spec = spec
        self.requests: list[HttpRequest] = []

    def update(self, **changes: Any) -> None:
        self.spec = replace(self.spec, **changes)

    def body(self) -> bytes | None:
        if self.policy is None:
            return None
        body = self.policy.encode() if isinstance(self.policy, str) else self.policy
        body += self.spec.body_extra.encode()
        if self.spec.oversize > len(body):
            filler = b"# padding to make the policy oversized\n" * (self.spec.oversize // 39 + 1)
            body += filler[: self.spec.oversize - len(body)]
        return body

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader, writer)
        self.requests.append(request)
        spec = self.spec
        if spec.delay_ms:
            await asyncio.sleep(spec.delay_ms / 1000)
        body = self.body() if request.path.split("?")[0] == WELL_KNOWN_PATH else None
        status = spec.status
        if spec.redirect_to and status == 200:
            status = 301
        elif body is None and status == 200:
            status, body = 404, b"not found\n"
        body = body if body is not None else reason(status).encode() + b"\n"
        body = encode(body, spec.content_encoding)
        head = status_line(status)
        if spec.content_type:
            head += f"Content-Type: {spec.content_type}\r\n".encode()
        if spec.redirect_to:
            head += f"Location: {spec.redirect_to}\r\n".encode()
        if spec.content_encoding:
            head += f"Content-Encoding: {spec.content_encoding}\r\n".encode()
        if not spec.endless:
            head += f"Content-Length: {len(body)}\r\n".encode()
        writer.write(head + b"Connection: close\r\n\r\n")
        if request.method == "HEAD":
            body = b""
        if spec.slow_ms:
            step = max(1, spec.drip_bytes)
            for i in range(0, len(body), step):
                writer.write(body[i : i + step])
                await writer.drain()
                await asyncio.sleep(spec.slow_ms / 1000)
        else:
            writer.write(body)
        while spec.endless:
            writer.write(b"# and more\n" * 1024)
            await writer.drain()
            await asyncio.sleep(0.001)
        await writer.drain()


class TlsRptHttps:
    """The https TLS-RPT receiver: stores every request; answers from a status sequence
    (the last status repeats), e.g. ``(500, 200)`` fails once then accepts."""

    def __init__(self, name: str, statuses: tuple[int, ...] = (200,)) -> None:
        self.name = name
        self.statuses = list(statuses)
        self.posts: list[HttpRequest] = []
        self.url = ""

    def set_statuses(self, statuses: list[int] | tuple[int, ...]) -> None:
        self.statuses = list(statuses) or [200]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader, writer)
        self.posts.append(request)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        body = reason(status).encode() + b"\n"
        writer.write(
            status_line(status)
            + b"Content-Type: text/plain\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
