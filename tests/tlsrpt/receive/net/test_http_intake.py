"""The https intake against the real service on loopback (RFC 8460 §5.4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from receive_net_support import (
    GZIP,
    JSON,
    failing_receiver,
    metric,
    open_receiver,
    post,
    read_answer,
    report_gzip,
    report_json,
    request_head,
    running_service,
)

pytestmark = pytest.mark.lab

SECRET = "s3cr3t-path-for-a-test-domain"


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Any]:
    r = await open_receiver(tmp_path)
    try:
        yield r
    finally:
        await r.close()


async def test_gzip_and_json_reports_are_stored_and_a_resend_is_a_duplicate(
    receiver: Any,
) -> None:
    async with running_service(receiver) as service:
        port = service.http_port
        first = await post(port, report_gzip("r-1"), GZIP)
        assert (first.status, first.json["result"]) == (200, "stored")
        assert first.headers["content-type"] == "application/json"
        second = await post(port, report_json("r-2"), JSON + "; charset=utf-8")
        assert (second.status, second.json["result"]) == (200, "stored")
        again = await post(port, report_gzip("r-1"), GZIP)
        assert (again.status, again.json["result"]) == (200, "duplicate")
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert (
            metric(
                text, "mtasts_tlsrpt_intake_received_total", channel="https", disposition="stored"
            )
            == 2
        )
        assert metric(text, "mtasts_tlsrpt_intake_duplicates_total", channel="https") == 1
        assert "mtasts_tlsrpt_intake_store_seconds_count" in text


@pytest.mark.parametrize(
    ("content_type", "why"),
    [
        (None, "no Content-Type at all"),
        ("application/json", "JSON, but not the TLS-RPT media type"),
        ("application/gzip", "gzip, but not the TLS-RPT media type"),
        ("text/plain", "any other type"),
        ("application/tlsrpt+gzipx", "a near miss"),
    ],
)
async def test_other_media_types_are_415(receiver: Any, content_type: str | None, why: str) -> None:
    async with running_service(receiver) as service:
        answer = await post(service.http_port, report_gzip("r-m"), content_type)
        assert answer.status == 415, why
        assert "application/tlsrpt+gzip" in answer.json["reason"]


async def test_what_cannot_be_a_report_is_4xx_with_the_reason(receiver: Any) -> None:
    async with running_service(receiver) as service:
        answer = await post(service.http_port, b"\x00garbage{", JSON)
        assert 400 <= answer.status < 500
        assert answer.json["result"] == "refused"
        assert answer.json["reason"]
        # ... and the service still takes the next report.
        ok = await post(service.http_port, report_gzip("after-garbage"))
        assert ok.status == 200


async def test_unknown_paths_and_methods(receiver: Any) -> None:
    async with running_service(receiver) as service:
        base = f"http://127.0.0.1:{service.http_port}"
        async with httpx.AsyncClient(base_url=base) as c:
            assert (await c.get("/tlsrpt")).status_code == 405
            assert (await c.post("/elsewhere", content=b"{}")).status_code == 404


async def test_a_declared_length_past_the_bound_is_413_before_the_body(receiver: Any) -> None:
    """A 50 MB Content-Length is refused at once: nothing of the body is needed."""
    async with running_service(receiver, max_body=100_000) as service:
        reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
        writer.write(request_head("/tlsrpt", GZIP, 50 * 2**20))
        await writer.drain()
        answer = await asyncio.wait_for(read_answer(reader), 10)
        assert answer.status == 413
        assert answer.headers.get("connection") == "close"
        writer.close()


async def test_a_chunked_50_mb_body_is_cut_at_the_bound(receiver: Any) -> None:
    """Without a Content-Length the body is counted while it streams: 413 at the bound,
    the connection closed long before 50 MB, and the rest never read into memory. (The
    close may reach the sender as a reset before it reads the 413: TCP discards an
    answer when unread data arrives after it; the metric shows the server's decision.)"""
    async with running_service(receiver, max_body=1_000_000) as service:
        reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
        writer.write(request_head("/tlsrpt", GZIP, None, "Transfer-Encoding: chunked\r\n"))
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < 50 * 2**20 and not reader.at_eof():
                writer.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                await asyncio.wait_for(writer.drain(), 10)
                sent += len(chunk)
            answer = await asyncio.wait_for(read_answer(reader), 10)
            assert answer.status == 413
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        writer.close()
        assert sent < 50 * 2**20  # cut long before the end
        text = service.metrics.render().decode()
        assert (
            metric(text, "mtasts_tlsrpt_intake_refused_total", channel="https", reason="too-large")
            == 1
        )
        assert (await post(service.http_port, report_gzip("after-50mb"))).status == 200


async def test_secret_paths(receiver: Any) -> None:
    async with running_service(receiver, secrets={"a.test": SECRET}) as service:
        port = service.http_port
        assert (await post(port, report_gzip("s-1"), path=f"/tlsrpt/{SECRET}")).status == 200
        wrong = await post(port, report_gzip("s-2"), path="/tlsrpt/not-the-secret-at-all")
        assert wrong.status == 404
        # Without require_https_secret the bare path still takes reports.
        assert (await post(port, report_gzip("s-3"))).status == 200


async def test_a_client_over_its_rate_gets_429_with_retry_after(receiver: Any) -> None:
    async with running_service(receiver, rate=0.01, burst=3) as service:
        answers = [await post(service.http_port, report_gzip(f"rate-{i}")) for i in range(5)]
        assert [a.status for a in answers] == [200, 200, 200, 429, 429]
        assert int(answers[3].headers["retry-after"]) >= 1


async def test_ingests_past_max_inflight_get_503(receiver: Any) -> None:
    """One sender holds the only ingest slot by sending its body slowly; the next one is
    told to come back (503 + Retry-After) instead of queueing without bound, and the first
    one's report is still stored when its body arrives."""
    async with running_service(receiver, max_inflight=1, client_concurrency=0) as service:
        body = report_gzip("slow-1")
        reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
        writer.write(request_head("/tlsrpt", GZIP, len(body)) + body[:10])
        await writer.drain()
        for _ in range(200):  # the slot is taken once the head is read
            if service.gate.inflight == 1:
                break
            await asyncio.sleep(0.02)
        busy = await post(service.http_port, report_gzip("fast-1"))
        assert busy.status == 503
        assert busy.headers["retry-after"]
        writer.write(body[10:])
        await writer.drain()
        first = await asyncio.wait_for(read_answer(reader), 10)
        assert first.status == 200
        writer.close()
        assert (await post(service.http_port, report_gzip("fast-1"))).status == 200


async def test_a_head_dripped_slowly_is_cut_at_the_header_timeout(receiver: Any) -> None:
    async with running_service(receiver, header_timeout=0.5) as service:
        reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
        start = asyncio.get_running_loop().time()
        head = request_head("/tlsrpt", GZIP, 10)
        closed = False
        for byte in head:
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except (ConnectionError, OSError):
                closed = True
                break
            await asyncio.sleep(0.05)
            if reader.at_eof():
                closed = True
                break
        if not closed:
            assert await asyncio.wait_for(reader.read(), 5) == b""
        assert asyncio.get_running_loop().time() - start < 5
        writer.close()


async def test_a_body_sent_too_slowly_is_408(receiver: Any) -> None:
    async with running_service(receiver, body_timeout=0.5) as service:
        reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
        writer.write(request_head("/tlsrpt", GZIP, 1000) + b"x" * 10)
        await writer.drain()
        answer = await asyncio.wait_for(read_answer(reader), 10)
        assert answer.status == 408
        writer.close()


async def test_garbage_on_the_socket_never_stops_the_service(receiver: Any) -> None:
    async with running_service(receiver) as service:
        port = service.http_port
        for junk in (
            b"\x16\x03\x01\x02\x00\x01\x00",
            b"GET\r\n\r\n",
            b"POST / HTTP/9\r\n\r\n",
            b"\xff" * 20000,
        ):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(junk)
            try:
                await writer.drain()
                await asyncio.wait_for(reader.read(), 10)
            except (ConnectionError, OSError):
                pass
            writer.close()
        assert (await post(port, report_gzip("after-junk"))).status == 200


async def test_a_store_that_fails_is_503_with_retry_after() -> None:
    async with failing_receiver() as receiver, running_service(receiver) as service:
        answer = await post(service.http_port, report_gzip("down-1"))
        assert answer.status == 503
        assert answer.headers["retry-after"]
        assert answer.json["result"] == "retry"


@pytest.mark.parametrize(
    ("other_domains", "status", "result"),
    [
        ("refuse", 403, "refused"),
        ("quarantine", 202, "quarantined"),
    ],
)
async def test_reports_for_domains_not_ours_by_configuration(
    tmp_path: Path, other_domains: str, status: int, result: str
) -> None:
    """The list of our domains is the Receiver's decision; the answer follows it."""
    from mtasts.tlsrpt.receive.decide import OtherDomains

    receiver = await open_receiver(
        tmp_path, owned_domains=frozenset({"a.test"}), other_domains=OtherDomains(other_domains)
    )
    try:
        async with running_service(receiver) as service:
            ours = await post(service.http_port, report_gzip("d-1", "a.test"))
            assert ours.status == 200
            other = await post(service.http_port, report_gzip("d-2", "b.test"))
            assert (other.status, other.json["result"]) == (status, result)
            assert other.json["reason"]
    finally:
        await receiver.close()


async def test_on_postgresql_concurrent_posts_are_each_stored_once() -> None:
    from datetime import date

    from receive_net_support import PG_URL, pg_receiver

    from mtasts.tlsrpt.receive.query import received_reports

    async with (
        pg_receiver() as (receiver, schema),
        running_service(receiver, max_inflight=64, client_concurrency=0, rate=0) as service,
    ):
        ids = [f"pg-{i}" for i in range(50)]
        answers = await asyncio.gather(*(post(service.http_port, report_gzip(i)) for i in ids))
        assert [a.status for a in answers] == [200] * 50
        again = await post(service.http_port, report_gzip("pg-0"))
        assert again.json["result"] == "duplicate"
        stored = await received_reports(PG_URL, since=date(2026, 11, 1), schema=schema)
        assert sorted(r.report_id for r in stored) == sorted(ids)


async def test_https_a_client_that_never_says_hello_is_cut_at_the_header_timeout(
    receiver: Any, tmp_path: Path
) -> None:
    """TLS from --cert/--key; a TCP connection that never starts its TLS handshake is
    closed after header_timeout (asyncio's default would hold it 60 s)."""
    import ssl

    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("receiver.test")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_bytes(b"".join(b.bytes() for b in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key))
    async with running_service(
        receiver, cert=str(cert), key=str(key), header_timeout=0.5
    ) as service:
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        async with httpx.AsyncClient(verify=ctx) as client:
            answer = await client.post(
                f"https://127.0.0.1:{service.http_port}/tlsrpt",
                content=report_gzip("tls-1"),
                headers={"Content-Type": GZIP, "Host": "receiver.test"},
                extensions={"sni_hostname": "receiver.test"},
            )
        assert answer.status_code == 200
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", service.http_port)
        start = loop.time()
        assert await asyncio.wait_for(reader.read(), 20) == b""
        assert loop.time() - start < 10
        writer.close()
