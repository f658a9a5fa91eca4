"""The request reader of our servers (net.httpserver) over a real loopback connection."""

from __future__ import annotations

import asyncio

import pytest

from mtasts.net.httpserver import (
    Refusal,
    RequestHead,
    RequestReader,
    finish_stream,
    response_bytes,
    stream_recv,
)

Outcome = RequestHead | Refusal | bytes | Exception


async def _serve_one(data: bytes, *, max_head: int = 8192, max_body: int = 1024) -> Outcome:
    """Send ``data`` to a server that reads one request; what it read (or raised)."""
    done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests = RequestReader(stream_recv(reader), max_head=max_head)
        try:
            head = await requests.head(2.0)
            outcome: Outcome = head
            if isinstance(head, RequestHead) and head.method == "POST":
                outcome = await requests.body(max_body)
        except (ConnectionError, TimeoutError) as exc:
            outcome = exc
        done.set_result(outcome)
        writer.write(response_bytes(200, (("Content-Type", "text/plain"),), b"ok\n"))
        await writer.drain()
        await finish_stream(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        writer.write_eof()
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
        assert answer.endswith(b"Content-Length: 3\r\nConnection: close\r\n\r\nok\n")
        return await asyncio.wait_for(done, 5)
    finally:
        server.close()


async def test_a_head_is_read_with_lower_case_names_and_the_first_host() -> None:
    head = await _serve_one(b"GET /x?y=1 HTTP/1.1\r\nHOST: a.test\r\nX-One: 1\r\n\r\n")
    assert head == RequestHead(
        method="GET",
        target="/x?y=1",
        http_version="1.1",
        headers=(("host", "a.test"), ("x-one", "1")),
    )
    assert isinstance(head, RequestHead)
    assert head.host == "a.test"
    assert head.header("X-ONE") == "1"
    assert head.header("missing") is None


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        (b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: a\r\n", 400),  # cut short: the client closed mid-head
    ],
)
async def test_refusals(data: bytes, status: int) -> None:
    refusal = await _serve_one(data)
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.no_request) == (status, False)
    assert refusal.text.endswith("\n")


async def test_nothing_sent_is_no_request() -> None:
    refusal = await _serve_one(b"")
    assert refusal == Refusal(400, "no request was sent\n", no_request=True)
    assert isinstance(refusal, Refusal)
    assert refusal.reason == "Bad Request"


async def test_a_smaller_head_bound_is_the_callers() -> None:
    refusal = await _serve_one(
        b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 300 + b"\r\n\r\n", max_head=256
    )
    assert isinstance(refusal, Refusal)
    assert refusal.status == 431


@pytest.mark.parametrize(
    ("data", "body"),
    [
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", b"hello"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\n\r\n",
            b"hello",
        ),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", b""),
    ],
)
async def test_bodies_by_length_and_chunked(data: bytes, body: bytes) -> None:
    assert await _serve_one(data) == body


@pytest.mark.parametrize(
    "data",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" + b"a" * 2000,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"400\r\n"
        + b"a" * 1024
        + b"\r\n"
        + b"1\r\na\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nshort",  # cut short
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # malformed
    ],
)
async def test_a_body_above_the_cap_cut_short_or_malformed_is_a_connection_error(
    data: bytes,
) -> None:
    assert isinstance(await _serve_one(data, max_body=1024), ConnectionError)


def test_response_bytes() -> None:
    assert response_bytes(404, (("Content-Type", "application/json"),), b"{}") == (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    assert response_bytes(799, (), b"").startswith(b"HTTP/1.1 799 \r\n")
