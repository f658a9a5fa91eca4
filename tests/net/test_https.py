"""The one HTTPS client against the lab: POST (the report upload), the raw reading and the
TLS evidence hook (the checker), on real TLS servers on loopback."""

from __future__ import annotations

import asyncio
import ssl
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from mtasts.errors import FetchError, WebPkiError
from mtasts.lab.lab import REPORTS_NAME, Lab
from mtasts.lab.scenario import PolicyHostSpec
from mtasts.lab.testing import healthy_domain, running_lab
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient, Timeouts, authority
from mtasts.net.tls import client_context

pytestmark = pytest.mark.lab

REPORT = b"\x1f\x8b" + bytes(range(256)) * 40  # bytes, not text: sent as they are


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with running_lab(healthy_domain("a.test")) as lab:
        yield lab


def client(lab: Lab, **options: object) -> HttpsClient:
    return HttpsClient(
        DnsClient(lab.nameserver, timeout=1.0),
        client_context(str(lab.ca_file)),
        port=lab.https_port,
        **options,  # type: ignore[arg-type]
    )


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def serve(lab: Lab, name: str, handler: Handler) -> tuple[asyncio.Server, int]:
    """A TLS server on 127.0.0.1 with the lab's certificate for ``name``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            await handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    context = lab.pki.server_context(name, "valid")
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, int(server.sockets[0].getsockname()[1])


def test_authority_writes_host_and_port_as_url_and_host_header_do() -> None:
    assert authority("r.example", 443) == "r.example"
    assert authority("r.example", 8443) == "r.example:8443"
    assert authority("192.0.2.1", 8443) == "192.0.2.1:8443"
    assert authority("2001:db8::1", 443) == "[2001:db8::1]"
    assert authority("2001:db8::1", 8443) == "[2001:db8::1]:8443"


async def test_post_goes_to_our_dns_answer_with_sni_and_host_of_the_name(lab: Lab) -> None:
    """RFC 8460 §5.4: the report is POSTed as application/tlsrpt+gzip; the connection goes
    to the address given, the name is in SNI, the certificate check and the Host header."""
    https = client(lab, user_agent="mtasts/test (+RFC 8460)")
    try:
        response = await https.post(
            lab.address(REPORTS_NAME),
            REPORTS_NAME,
            lab.https_port,
            "/tlsrpt?x=1",
            REPORT,
            "application/tlsrpt+gzip",
        )
    finally:
        await https.aclose()
    assert response.status == 200
    assert response.url == f"https://{REPORTS_NAME}:{lab.https_port}/tlsrpt?x=1"
    (post,) = lab.tlsrpt_https.posts
    assert (post.method, post.path) == ("POST", "/tlsrpt?x=1")
    assert post.sni == REPORTS_NAME
    assert post.host == f"{REPORTS_NAME}:{lab.https_port}"
    assert post.tls_version in ("TLSv1.2", "TLSv1.3")
    assert post.header("content-type") == "application/tlsrpt+gzip"
    assert post.header("user-agent") == "mtasts/test (+RFC 8460)"
    assert post.header("connection") == "close"
    assert post.body == REPORT


async def test_post_never_follows_a_redirect(lab: Lab) -> None:
    lab.tlsrpt_https.set_statuses([307])
    https = client(lab)
    try:
        response = await https.post(
            lab.address(REPORTS_NAME), REPORTS_NAME, lab.https_port, "/tlsrpt", REPORT, "x/y"
        )
    finally:
        await https.aclose()
    assert response.status == 307
    assert len(lab.tlsrpt_https.posts) == 1


async def test_post_to_a_host_whose_certificate_names_another_is_a_webpki_error(
    lab: Lab,
) -> None:
    """The name given (not the address) is checked against the certificate."""
    https = client(lab)
    try:
        with pytest.raises(WebPkiError):
            await https.post(
                lab.address(REPORTS_NAME), "mta-sts.a.test.evil", lab.https_port, "/", b"", "x/y"
            )
    finally:
        await https.aclose()
    assert lab.tlsrpt_https.posts == []


async def test_an_endless_answer_to_a_post_is_read_up_to_the_cap_only(lab: Lab) -> None:
    """A receiver that answers 200 and then sends forever: the status counts, the body is
    cut at the cap (it was read whole before), memory stays bounded."""

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        while True:
            writer.write(b"x" * 65536)
            await writer.drain()

    server, port = await serve(lab, "endless.test", endless)
    https = client(lab, max_bytes=4096)
    tracemalloc.start()
    try:
        response = await https.post("127.0.0.1", "endless.test", port, "/", REPORT, "x/y")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        await https.aclose()
        server.close()
    assert response.status == 200
    assert response.truncated
    assert response.body == b"x" * 4096
    assert peak < 4 * 1024 * 1024


async def test_a_trickled_answer_ends_at_the_total_deadline(lab: Lab) -> None:
    """Each byte comes before the read timeout, so only the total deadline stops it."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    server, port = await serve(lab, "slow.test", trickle)
    https = client(lab, timeouts=Timeouts(connect=1.0, read=1.0, total=0.6))
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as caught:
            await https.post("127.0.0.1", "slow.test", port, "/", REPORT, "x/y")
    finally:
        await https.aclose()
        server.close()
    assert caught.value.code == "fetch.timeout"
    assert time.monotonic() - started < 3.0


async def test_the_tls_hook_reads_the_peer_while_the_connection_is_open(lab: Lab) -> None:
    """The checker's evidence: the hook gets the live SSL object (version, certificate)."""
    seen: list[tuple[str | None, bytes | None]] = []

    def hook(ssl_object: ssl.SSLObject | None) -> None:
        assert ssl_object is not None
        seen.append((ssl_object.version(), ssl_object.getpeercert(binary_form=True)))

    https = client(lab)
    try:
        response = await https.exchange(
            lab.address("mta-sts.a.test"), "mta-sts.a.test", "/nothing-here", raw=True, on_tls=hook
        )
    finally:
        await https.aclose()
    assert response.status == 404
    assert response.body == b"not found\n"  # raw: the body of any status is kept
    ((version, der),) = seen
    assert version in ("TLSv1.2", "TLSv1.3")
    assert der


async def test_raw_keeps_the_first_bytes_of_an_oversized_body(lab: Lab) -> None:
    """The sender's reading refuses a body above the cap; the raw reading keeps its first
    max_bytes and says it was cut."""
    lab.set_policy_host("a.test", oversize=100_000)
    https = client(lab, max_bytes=65536)
    try:
        raw = await https.exchange(
            lab.address("mta-sts.a.test"), "mta-sts.a.test", "/.well-known/mta-sts.txt", raw=True
        )
        with pytest.raises(FetchError) as caught:
            await https.get("mta-sts.a.test", "/.well-known/mta-sts.txt")
    finally:
        await https.aclose()
    assert raw.truncated
    assert len(raw.body) == 65536
    assert raw.body.startswith(b"version: STSv1")
    assert [k for k, _ in raw.headers].count("content-type") == 1  # every header, as sent
    assert caught.value.code == "fetch.too-large"


async def test_no_connection_is_kept_for_another_host_name(lab: Lab) -> None:
    """Two requests to one address: two TLS connections (no keep-alive across names)."""
    https = client(lab)
    try:
        for _ in range(2):
            await https.post(
                lab.address(REPORTS_NAME), REPORTS_NAME, lab.https_port, "/", b"", "x/y"
            )
    finally:
        await https.aclose()
    first, second = lab.tlsrpt_https.posts
    assert first.sni == second.sni == REPORTS_NAME
    assert all(p.header("connection") == "close" for p in (first, second))


async def test_the_first_reachable_address_answers_a_get(lab: Lab) -> None:
    """get() tries each address: a refused one is skipped; a TLS failure is not."""
    lab.set_records("mta-sts.a.test", "A", ["127.0.0.254", lab.address("mta-sts.a.test")])
    https = client(lab, timeouts=Timeouts(connect=1.0, read=2.0, total=5.0))
    try:
        response = await https.get("mta-sts.a.test", "/.well-known/mta-sts.txt")
    finally:
        await https.aclose()
    assert response.status == 200
    assert response.address == lab.address("mta-sts.a.test")


@pytest.mark.parametrize("spec", [PolicyHostSpec(cert="expired"), PolicyHostSpec(cert="cn-only")])
async def test_certificates_a_sender_refuses_are_refused_for_every_method(
    spec: PolicyHostSpec,
) -> None:
    async with running_lab(healthy_domain("b.test", policy_host=spec)) as lab:
        https = client(lab)
        try:
            with pytest.raises(WebPkiError):
                await https.exchange(
                    lab.address("mta-sts.b.test"), "mta-sts.b.test", "/", method="POST", body=b""
                )
        finally:
            await https.aclose()
